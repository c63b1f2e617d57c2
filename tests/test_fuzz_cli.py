"""Fuzzed command lines (Hypothesis): 500 argument lists per CLI from valid and invalid tokens.

Each drawn list runs in-process through the CLI's ``main`` with the expensive part stubbed (training, the
search, model building for ``zoo summary``), so what is tested is everything before it: parsing, the
values' checks, the recipe and the search space. Whatever is drawn: the exit status is 0 or 2, stderr
never holds a traceback, an error is exactly one line, and an error writes nothing.
"""

import contextlib
import io
import os
import tempfile
from types import SimpleNamespace

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

EXAMPLES = 500
COMMON = ["--epochs", "0", "1", "-3", "2.5", "abc", "--seed", "7", "--batch-size", "16", "0", "--limit", "100",
          "--data", "digits", "digit", "no_such.npz", "fashion_mnist", "--quick", "--help", "--version", "",
          "=", "--", "-x", "--no-such-option", "1e-4", "nan", "inf", "é", "--out", "out"]
TOKENS = {
    "zoo": ["list", "summary", "gradcheck", "activations", "--activation", "tanh", "swish", "--init", "he",
            "normal0.01", "--plot", "lenet5", "resnet20", "lenet6", "resnet*", "--input-shape", "32,32,3",
            "8,8", "0,1", "a,b", "--classes", "3", "--no-batch-norm", "--batch", "--l2", "--max-params"],
    "recipe": ["--preset", "full", "best", "baseline", "strongest", "--l2", "--l1", "--keep-prob", "0.5", "1.5",
               "--batch-norm", "--no-batch-norm", "--augmentation", "none", "flip", "shift", "--optimizer", "adam",
               "lbfgs", "--learning-rate", "--variant", "lenet5", "--folds", "3", "--label-smoothing", "--ema",
               "0.999", "--tta", "--mixup", "--cutmix", "--patience", "--schedule", "cosine"],
    "tuning": ["--model", "lenet5", "lenet6", "--tuner", "random", "tpe", "annealing", "hyperband", "--space",
               "l2=1e-6:1e-2", "keep_prob=0.5:1.0", "l2", "dropout=0.1:0.5", "--fix", "batch_norm=true",
               "batch_norm=maybe", "--max-trials", "--prune", "median", "sometimes", "--prune-warmup",
               "--folds", "--executions-per-trial", "--objective", "val_loss", "val_f1", "--chief",
               "127.0.0.1:8000", "127.0.0.1:http", "--worker", "w0", "--preset", "best"],
    "compare": ["--model", "lenet5", "lenet6", "resnet20", "--presets", "baseline,l2", "baseline,strongest", "",
                "--l2", "--optimizers", "sgd,adam", "adam,lbfgs", "--activations", "tanh,relu", "relu,swish",
                "--preset", "full"],
}


def _fake_run_result():
    metrics = {"model": "lenet5", "data": "digits", "preset": "full", "test_accuracy": 0.5, "test_loss": 1.0,
               "train_accuracy": 0.5, "val_accuracy": 0.5, "epochs_run": 1, "best_epoch": 1, "wall_time_s": 0.1,
               "kernel_sparsity": 0.0}
    return SimpleNamespace(metrics=metrics, folder="runs/fake", verdict=SimpleNamespace(text="fake", kind="fake"))


@pytest.fixture(scope="module")
def stubbed():
    """The expensive calls behind every CLI replaced by instant stubs for the module."""
    import importlib

    import zoo
    import zoo.registry

    module = {name: importlib.import_module(name) for name in
              ("recipes.compare", "recipes.crossval", "recipes.train", "tuning.search", "zoo.cli")}
    fake_search = SimpleNamespace(role="local", summary=lambda top=5: "fake search")
    patches = [
        (module["recipes.train"], "run", lambda recipe, **kwargs: _fake_run_result()),
        (module["recipes.crossval"], "cross_validate", lambda *a, **k: SimpleNamespace(summary={}, folder="cv")),
        (module["recipes.compare"], "compare_recipes", lambda labelled, **k: []),
        (module["tuning.search"], "search", lambda *a, **k: fake_search),
        (zoo, "summary", lambda model, **k: None),
        (zoo.registry.ModelEntry, "build", lambda self, **k: None),
        (module["zoo.cli"], "_gradcheck", lambda args: 0),
        (module["zoo.cli"], "_activations", lambda args: 0),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def _mains():
    from recipes.cli import script_main
    from recipes.compare import main as compare_main
    from tuning.__main__ import main as tuning_main
    from zoo.cli import main as zoo_main

    def recipe_main(argv):
        return script_main(argv, prog="recipes.lenet5", default_model="lenet5", family="lenet")

    return {"zoo": zoo_main, "recipe": recipe_main, "tuning": tuning_main, "compare": compare_main}


@contextlib.contextmanager
def _inside(folder):
    """contextlib.chdir (Python 3.11+) for 3.10 too."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def _invoke(main, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as done:  # --help / --version
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("cli", list(TOKENS))
def test_fuzzed_command_lines_exit_0_or_2_with_one_line_and_write_nothing_on_error(cli, stubbed):
    main = _mains()[cli]
    tokens = st.sampled_from(TOKENS[cli] + COMMON) | st.text(max_size=6)
    work = tempfile.mkdtemp(prefix=f"fuzz-{cli}-")
    seen = {"errors": 0, "runs": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(tokens, max_size=8))
    def check(argv):
        before = sorted(os.listdir(work))
        with _inside(work):
            code, _, err = _invoke(main, argv)
        assert code in (0, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
        seen["runs"] += 1
        if code == 2:
            seen["errors"] += 1
            assert len(err.strip().splitlines()) == 1, (argv, err)
            assert sorted(os.listdir(work)) == before, (argv, "an error wrote files")

    check()
    assert seen["runs"] >= EXAMPLES and 0 < seen["errors"] < seen["runs"], seen


@pytest.mark.parametrize("cli, argv", [("zoo", ["--help"]), ("zoo", ["summary", "--help"]), ("recipe", ["--help"]),
                                       ("tuning", ["--help"]), ("compare", ["--help"])])
def test_help_states_each_default_once(cli, argv):
    import re

    code, out, err = _invoke(_mains()[cli], argv)
    assert code == 0 and err == ""
    assert "(default: None)" not in out and "(default: True)" not in out and "(default: False)" not in out
    body = out.split("options:", 1)[1]
    blocks = re.split(r"\n  (?=-)", body)  # one block per option
    for block in blocks:
        assert block.count("default") <= 1, block
