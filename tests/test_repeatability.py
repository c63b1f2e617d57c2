"""Repeatability: the same recipe with the same seed gives the same numbers, run after run.

On CPU that holds with ``keras.utils.set_random_seed`` alone (which ``recipes.train.run`` calls) and also
under TensorFlow's op determinism (``run(..., deterministic=True)`` / ``--deterministic``), which a GPU
needs (see the ``deterministic`` argument of ``recipes.train.run``). The two modes may differ from each
other in the last bits, so each is compared with itself. The ``full`` preset covers every random piece:
shuffling, augmentation layers, dropout, batch norm, early stopping.
"""

import json
import math

import pytest

from recipes.cli import build_parser
from recipes.recipe import preset
from recipes.train import op_determinism, run

NOT_REPEATABLE = {"wall_time_s"}  # the only field that is a clock reading (metrics.json has no timestamps)
RECIPE = preset("lenet5", "full", limit=200, test_limit=60, epochs=2, batch_size=32, seed=11)


def _numbers(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in NOT_REPEATABLE}, (folder / "history.csv").read_text()


def _op_determinism_enabled():
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


@pytest.mark.parametrize("deterministic", [False, True], ids=["seeded", "op_determinism"])
def test_same_recipe_same_seed_same_metrics(deterministic, tmp_path):
    results = [run(RECIPE, out=tmp_path / f"run{i}", verbose=0, deterministic=deterministic) for i in range(2)]
    (first, first_history), (second, second_history) = (_numbers(r.folder) for r in results)
    assert first == second, {k: (first[k], second.get(k)) for k in first if first[k] != second.get(k)}
    assert first_history == second_history, "every epoch's loss, accuracy and learning rate, bit for bit"
    assert math.isfinite(first["test_loss"]) and first["epochs_run"] >= 1
    assert not _op_determinism_enabled(), "run() leaves TensorFlow's determinism switch as it found it"
    if not deterministic:  # and the seed does matter
        other = run(RECIPE.replace(seed=12), out=tmp_path / "other", verbose=0)
        assert other.metrics["train_loss"] != first["train_loss"]


def test_op_determinism_is_scoped_and_on_the_command_line():
    assert not _op_determinism_enabled()
    with op_determinism():
        assert _op_determinism_enabled()
        with op_determinism():
            assert _op_determinism_enabled()
        assert _op_determinism_enabled(), "an inner block does not switch off an outer one"
    assert not _op_determinism_enabled()
    with op_determinism(False):
        assert not _op_determinism_enabled()
    parser = build_parser("recipes.lenet5", default_model="lenet5")
    assert parser.parse_args(["--deterministic"]).deterministic is True
    assert parser.parse_args([]).deterministic is False
