"""The recipe command lines: every script's ``--quick`` smoke run end to end, the compare table, and
bad input (one line on stderr, exit status 2, no traceback, no complete-looking run folder)."""

import json
import sys
from pathlib import Path

import pytest

import zoo
from conftest import assert_inference_model, assert_one_line_error

SCRIPTS = {  # script -> the model it trains by default
    "lenet5": "lenet5",
    "alexnet": "alexnet_small",
    "inception": "googlenet_small",
    "resnet": "resnet20",
    "lstm": "lstm",
}
METRIC_KEYS = {
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "best_epoch",
    "epochs_run", "wall_time_s", "params", "macs", "kernel_sparsity", "smoke_run", "l1", "l2", "keep_prob", "batch_norm", "augmentation",
    "verdict",
}
RUN_FILES = {"config.json", "history.csv", "metrics.json", "model.keras", "curves.png", "weights.png", "verdict.txt",
             "best.keras"}


def _run_folders(out):
    return [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")] if out.exists() else []


# GoogLeNet's and ResNet's quick runs take 1-2 minutes each (graph building dominates): slow; their
# builders are tested in test_inception.py and test_resnet.py, the script path by the other three here.
_SLOW_SCRIPTS = ("inception", "resnet")


@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if s in _SLOW_SCRIPTS else
                                    pytest.param(s, marks=pytest.mark.backends) if s == "lenet5" else s
                                    for s in sorted(SCRIPTS)])
def test_script_quick_run_writes_a_complete_run_folder(script, run_cli, tmp_path):
    model = SCRIPTS[script]
    if model not in zoo.list_models():
        pytest.skip(f"{model} is not registered in zoo yet")
    out = tmp_path / "runs"
    result = run_cli(sys.executable, "-m", f"recipes.{script}", "--quick", "--out", str(out), "--verbose", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (folder,) = _run_folders(out)
    assert folder.name.startswith(f"{model}-digits-full-")
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics), METRIC_KEYS - set(metrics)
    assert metrics["model"] == model and metrics["preset"] == "full" and metrics["epochs_run"] == 2
    assert metrics["train_examples"] + metrics["val_examples"] == 300 and metrics["test_examples"] == 100
    assert metrics["params"] > 0 and metrics["macs"] > 0 and 0 <= metrics["test_accuracy"] <= 1
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == model and config["epochs"] == 2
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in result.stdout
    assert f"Verdict: {metrics['verdict']['kind']}" in result.stdout
    assert metrics["smoke_run"] is True and "Smoke run (--quick: 2 epochs" in result.stdout
    assert "Smoke run" in (folder / "verdict.txt").read_text()  # the run folder says so too
    assert not (out / ".inprogress").exists()
    # what the run folder holds is the inference model: no augmentation, dropout or batch statistics
    from recipes.data import load_data

    x = load_data("digits").x_test[:64]
    for saved in ("model.keras", "best.keras"):
        assert_inference_model(folder / saved, x, tmp_path / f"export-{saved}")


def test_lenet5_runs_as_a_file_too(run_cli, tmp_path):
    ok = run_cli(sys.executable, "recipes/lenet5.py", "--help")
    assert ok.returncode == 0 and "--keep-prob" in ok.stdout and "--variant" in ok.stdout, ok.stderr[-2000:]
    bad = run_cli(sys.executable, "recipes/lenet5.py", "--preset", "strongest", "--out", str(tmp_path))
    assert_one_line_error(bad, "--preset", "strongest")
    assert _run_folders(tmp_path) == []


def test_compare_prints_one_table(run_cli, tmp_path):
    out = tmp_path / "runs"
    result = run_cli(sys.executable, "-m", "recipes.compare", "--model", "lenet5", "--data", "digits",
                     "--presets", "baseline,dropout", "--quick", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("preset "))
    for word in ("train acc", "val acc", "test acc", "train-val gap", "|w|<1e-3", "epochs"):
        assert word in lines[head]
    rows = [line.split() for line in lines[head + 2: head + 4]]
    assert [row[0] for row in rows] == ["baseline", "dropout"]
    assert all(row[6] == "1" and row[5].endswith("%") for row in rows)  # epochs; the kernel sparsity
    assert len(_run_folders(out)) == 2
    (table,) = out.glob("compare-lenet5-digits-*.csv")
    assert len(table.read_text().splitlines()) == 3
    assert table.with_suffix(".png").stat().st_size > 1000      # the loss curves


def test_compare_runs_every_optimizer_at_its_conventional_rate(tmp_path, capsys):
    import csv

    from recipes.choices import CONVENTIONAL_LEARNING_RATES, OPTIMIZERS
    from recipes.compare import main

    out = tmp_path / "runs"
    assert main(["--optimizers", ",".join(OPTIMIZERS), "--quick", "--epochs", "1", "--verbose", "0",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "optimizer" in printed and "train acc" in printed
    (table,) = out.glob("compare-lenet5-digits-*.csv")
    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == list(OPTIMIZERS)
    for row in rows:
        config = json.loads((Path(row["folder"]) / "config.json").read_text())
        assert config["optimizer"] == row["run"] and config["preset"] == "baseline"
        assert config["learning_rate"] == CONVENTIONAL_LEARNING_RATES[row["run"]]
    assert table.with_suffix(".png").stat().st_size > 1000


def test_compare_activations_vary_the_builders_activation(tmp_path, capsys):
    from recipes.compare import main

    out = tmp_path / "runs"
    assert main(["--activations", "sigmoid,relu", "--quick", "--epochs", "1", "--verbose", "0", "--lr", "0.01",
                 "--out", str(out)]) == 0
    folders = sorted(_run_folders(out))
    kwargs = [json.loads((f / "config.json").read_text())["model_kwargs"] for f in folders]
    assert sorted(k["activation"] for k in kwargs) == ["relu", "sigmoid"]


@pytest.mark.parametrize("argv, needles", [
    (["--optimizers", "adam,lbfgs"], ["--optimizers", "lbfgs", "adadelta"]),
    (["--activations", "relu,swish"], ["--activations", "swish", "leaky_relu"]),
    (["--activations", "relu", "--model", "resnet20"], ["resnet20's builder takes no activation", "lenet5"]),
    (["--optimizers", "adam", "--presets", "full"], ["not allowed with argument"]),
])
def test_compare_bad_names_exit_2_with_the_allowed_list(tmp_path, capsys, argv, needles):
    from recipes.compare import main

    assert main([*argv, "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert _run_folders(tmp_path) == []


# Bad input: one subprocess (the real stderr of a fresh interpreter), the rest in-process.
def test_bad_argument_in_a_fresh_interpreter(run_cli, tmp_path):
    result = run_cli(sys.executable, "-m", "recipes.resnet", "--keep-prob", "0", "--out", str(tmp_path))
    assert_one_line_error(result, "--keep-prob", "(0, 1]")
    assert _run_folders(tmp_path) == []


@pytest.mark.parametrize("argv, needles", [
    (["--preset", "heavy"], ["--preset", "invalid choice", "heavy"]),
    (["--keep-prob", "0"], ["--keep-prob", "(0, 1]"]),
    (["--keep-prob", "1.5"], ["--keep-prob"]),
    (["--l2", "-1"], ["--l2", ">= 0"]),
    (["--l1", "x"], ["--l1", "number"]),
    (["--optimizer", "adamax"], ["--optimizer", "adamax", "nesterov"]),
    (["--schedule", "linear"], ["--schedule", "cosine"]),
    (["--data", "svhn"], ["--data", "svhn", "fashion_mnist"]),
    (["--data", "digit"], ["--data", "'digit'", "did you mean 'digits'?"]),
    (["--data", "no/such/folder"], ["no/such/folder", "not found"]),
    (["--augment", "flip"], ["augmentation", "flip", "digits"]),   # flips never fit digits
    (["--augment", "mixup"], ["--augment", "mixup"]),
    (["--lr", "0"], ["--lr", "> 0"]),
    (["--lr", "nan"], ["--lr", "finite"]),
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--batch-size", "-3"], ["--batch-size"]),
    (["--patience", "-1"], ["--patience"]),
    (["--limit", "1"], ["--limit", ">= 2"]),
    (["--variant", "resnet20"], ["--variant", "lenet5", "resnet20"]),
    (["--weight-decay", "1e-4", "--optimizer", "adam"], ["weight_decay", "adamw"]),
    (["--bogus"], ["unrecognized", "--bogus"]),
])
def test_bad_arguments_exit_2_with_one_line(argv, needles, tmp_path, capsys):
    from recipes.lenet5 import main

    status = main([*argv, "--out", str(tmp_path), "--quick"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert status == 2, captured.err
    assert len(lines) == 1 and "Traceback" not in captured.err, lines
    assert lines[0].startswith("recipes.lenet5")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert _run_folders(tmp_path) == []
    assert not (tmp_path / ".inprogress").exists() or not any((tmp_path / ".inprogress").iterdir())


def test_compare_rejects_an_unknown_preset_before_training(tmp_path, capsys):
    from recipes.compare import main

    assert main(["--presets", "baseline,strong", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "strong" in err[0] and "early_stopping" in err[0]
    assert not tmp_path.exists() or _run_folders(tmp_path) == []


def test_ctrl_c_exits_130(monkeypatch, tmp_path, capsys):
    import recipes.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes.train, "run", interrupted)
    assert recipes.cli.script_main(["--out", str(tmp_path)], prog="recipes.lenet5", default_model="lenet5",
                                   family="lenet") == 130
    assert "interrupted" in capsys.readouterr().err


def test_generic_entry_point_needs_a_model(capsys):
    from recipes.__main__ import main

    assert main([]) == 2
    assert "--model" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-m", "zoo", "list"], ["-m", "recipes.lenet5", "--help"]])
def test_a_closed_pipe_ends_quietly(argv):
    import subprocess

    # the reader is gone before the child prints anything (its imports take seconds)
    child = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    _, err = child.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()[-2000:]
    assert child.returncode in (0, 141)  # argparse's help ignores a closed pipe itself


def test_every_command_line_has_version(run_cli):
    from zoo.cli import package_version

    # one ArgumentParser class serves every command line; two fresh interpreters stand for all of them
    for argv in (["-m", "zoo"], ["-m", "tuning"]):
        result = run_cli(sys.executable, *argv, "--version")
        assert result.returncode == 0 and package_version() in result.stdout, (argv, result.stderr[-1000:])
