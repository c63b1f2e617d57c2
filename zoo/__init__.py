"""zoo: exact Keras 3 architectures with regularization as a first-class argument.

    import zoo
    reg = zoo.Regularization(l2=1e-4, keep_prob=0.8, batch_norm=True)
    model = zoo.lenet5(input_shape=(28, 28, 1), classes=10, regularization=reg)
    model = zoo.build("lenet5", input_shape=(8, 8, 1), regularization=reg)
    zoo.list_models(); zoo.summary(model); zoo.regularize(other_model, reg)

``zoo`` builds models only: it never touches data or training and never imports ``recipes`` or ``tuning``.

``import zoo`` loads every builder (and registers the zoo's layers, so ``keras.models.load_model`` reads
our ``.keras`` files) and quiets TensorFlow's start-up lines. The project's own command lines
(``python -m zoo``, ``zoo``, ``python -m recipes.<script>``, ``python -m tuning``, ``bench/*.py``) import
it lazily instead, so that ``--help`` and argument errors answer before TensorFlow is imported: there the
first use of a ``zoo.<name>`` (or :func:`load`) loads everything.
"""

from zoo._quiet import lazy_getattr as _lazy_getattr
from zoo._quiet import started_by_a_project_command_line as _started_by_a_project_command_line

_LOADED = False
_EXPORTS = (
    ("zoo.regularization", ("NO_REGULARIZATION", "Regularization")),
    ("zoo.registry", ("ModelEntry", "build", "get_entry", "list_models", "register_model", "register_variant")),
    ("zoo.summary", ("ModelSummary", "count_macs", "summary")),
    ("zoo.regularize", ("kernel_sparsity", "regularize")),
    ("zoo.layers", ("LocalResponseNormalization",)),
    ("zoo.gradcheck", ("GradCheckResult", "gradcheck")),
    ("zoo.activations", ("ActivationStats", "activation_stats")),
    ("zoo.lenet", ("lenet5",)),
)
_FAMILIES = ("zoo.alexnet", "zoo.inception", "zoo.resnet", "zoo.lstm")  # each lists its builders in __all__


def load() -> None:
    """Import every builder and register the zoo's layers (what ``import zoo`` does outside our command
    lines); idempotent."""
    global _LOADED, __all__
    if _LOADED:
        return
    import importlib

    from zoo._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    names = ["load"]
    for module_name, exported in _EXPORTS:
        module = importlib.import_module(module_name)
        globals().update({name: getattr(module, name) for name in exported})
        names += exported
    for module_name in _FAMILIES:
        module = importlib.import_module(module_name)
        globals().update({name: getattr(module, name) for name in module.__all__})
        names += module.__all__
    __all__ = names
    _LOADED = True


__getattr__ = _lazy_getattr('zoo', load, globals())


if _started_by_a_project_command_line():
    from zoo._quiet import enable_onednn as _enable_onednn

    _enable_onednn()  # before TensorFlow is imported; a value the user set wins
else:
    load()
