"""zoo: exact Keras 3 architectures with regularization as a first-class argument.

    import zoo
    reg = zoo.Regularization(l2=1e-4, keep_prob=0.8, batch_norm=True)
    model = zoo.lenet5(input_shape=(28, 28, 1), classes=10, regularization=reg)
    model = zoo.build("lenet5", input_shape=(8, 8, 1), regularization=reg)
    zoo.list_models(); zoo.summary(model); zoo.regularize(other_model, reg)

``zoo`` builds models only: it never touches data or training and never imports ``recipes`` or ``tuning``.
"""

from zoo._quiet import import_tensorflow_quietly as _quiet_tf

_quiet_tf()

from zoo.regularization import NO_REGULARIZATION, Regularization
from zoo.registry import ModelEntry, build, get_entry, list_models, register_model, register_variant
from zoo.summary import ModelSummary, count_macs, summary
from zoo.regularize import kernel_sparsity, regularize
from zoo.layers import LocalResponseNormalization
from zoo.gradcheck import GradCheckResult, gradcheck
from zoo.lenet import lenet5
from zoo import alexnet as _alexnet, inception as _inception, resnet as _resnet, lstm as _lstm
from zoo.alexnet import *  # noqa: E402,F401,F403  (each family module lists its public builders in __all__)
from zoo.inception import *  # noqa: E402,F401,F403
from zoo.resnet import *  # noqa: E402,F401,F403
from zoo.lstm import *  # noqa: E402,F401,F403

__all__ = [
    "Regularization", "NO_REGULARIZATION",
    "ModelEntry", "build", "get_entry", "list_models", "register_model", "register_variant",
    "ModelSummary", "count_macs", "summary", "regularize", "kernel_sparsity",
    "LocalResponseNormalization",
    "gradcheck", "GradCheckResult",
    "lenet5",
] + _alexnet.__all__ + _inception.__all__ + _resnet.__all__ + _lstm.__all__
