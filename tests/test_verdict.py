"""The bias/variance verdict on hand-made error triples (the course notes' own examples)."""

import math

import pytest

from recipes.verdict import DEFAULT_THRESHOLD, KINDS, Verdict, diagnose


@pytest.mark.parametrize(
    "train, val, baseline, kind",
    [
        # The notes' four cases with a ~0 % human error.
        (0.01, 0.11, 0.0, "high variance"),
        (0.15, 0.16, 0.0, "high bias"),
        (0.15, 0.30, 0.0, "high bias and high variance"),
        (0.005, 0.01, 0.0, "good fit"),
        # The baseline decides bias: 8 % train error is high bias against 0 % but not against 7.5 %.
        (0.08, 0.09, None, "high bias"),
        (0.08, 0.09, 0.075, "good fit"),
        (0.08, 0.15, 0.075, "high variance"),
    ],
)
def test_each_kind(train, val, baseline, kind):
    verdict = diagnose(train, val, baseline)
    assert verdict.kind == kind
    assert verdict.kind in KINDS
    assert verdict.avoidable_bias == pytest.approx(train - (baseline or 0.0))
    assert verdict.variance == pytest.approx(val - train)
    assert verdict.high_bias == ("bias" in kind)
    assert verdict.high_variance == ("variance" in kind)


def test_threshold_is_a_strict_gap_and_adjustable():
    # 0.10 - 0.08 is 0.020000000000000004 in floating point: still "not above" 2 points.
    assert diagnose(0.08, 0.10, 0.08).kind == "good fit"
    assert diagnose(0.08, 0.1001, 0.08).kind == "high variance"
    assert diagnose(0.05, 0.06, 0.0, threshold=0.1).kind == "good fit"
    assert diagnose(0.05, 0.06, 0.0, threshold=0.005).kind == "high bias and high variance"
    assert diagnose(0.0, 0.0).threshold == DEFAULT_THRESHOLD


def test_advice_follows_the_basic_recipe_order():
    bias = diagnose(0.15, 0.16, 0.0).advice
    assert "bigger network" in bias[0]
    assert "longer" in bias[1]
    assert "less regularization" in bias[2]

    variance = diagnose(0.01, 0.11, 0.0).advice
    assert "more data" in variance[0] and "augment" in variance[0]
    assert "larger λ" in variance[1] and "smaller keep-prob" in variance[1]
    assert "early stopping" in variance[2]

    both = diagnose(0.15, 0.30, 0.0).advice
    first_variance = next(i for i, a in enumerate(both) if "more data" in a)
    last_bias = max(i for i, a in enumerate(both) if "bigger network" in a or "less regularization" in a)
    assert last_bias < first_variance, "bias is fixed before variance"

    assert not any("bigger network" in a or "more data" in a for a in diagnose(0.005, 0.01).advice[:1])


def test_text_carries_the_numbers():
    verdict = diagnose(0.15, 0.30, 0.01)
    text = verdict.text
    assert text.startswith("Verdict: high bias and high variance")
    for number in ("15.00%", "30.00%", "1.00%", "+14.00%", "+15.00%"):
        assert number in text, (number, text)
    assert "1. " in text and str(verdict) == text
    assert "unknown" in diagnose(0.1, 0.1).text  # no baseline: said so, taken as 0

    data = verdict.to_dict()
    assert data["kind"] == verdict.kind and data["text"] == text and isinstance(data["advice"], list)


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        ((1.5, 0.1), {}, "train_error"),
        ((0.1, -0.1), {}, "val_error"),
        ((0.1, math.nan), {}, "val_error"),
        ((0.1, 0.1, 2.0), {}, "baseline_error"),
        (("0.1", 0.1), {}, "train_error"),
        ((0.1, 0.1), {"threshold": 0.0}, "threshold"),
    ],
)
def test_bad_input_names_the_argument(args, kwargs, field):
    with pytest.raises(ValueError, match=field):
        diagnose(*args, **kwargs)


def test_verdict_is_frozen():
    verdict = diagnose(0.1, 0.2)
    assert isinstance(verdict, Verdict)
    with pytest.raises(AttributeError):
        verdict.kind = "good fit"
