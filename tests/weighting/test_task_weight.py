"""``Task.weight`` in every strategy: multiplied in, or refused by name."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.models import Task
from mtrec.weighting import WEIGHTINGS
from mtrec.weighting import EqualWeighting
from mtrec.weighting import FixedWeighting
from mtrec.weighting import build_weighting

PRIOR = {"a": 2.0, "b": 0.5}
WEIGHTED = {k: Task(k, k, weight=w) for k, w in PRIOR.items()}
PLAIN = {k: Task(k, k) for k in PRIOR}
#: Strategies whose weights would absorb (or, for equal, contradict) a constant.
REFUSING = {"equal", "uncertainty", "gradnorm"}
COMBINING = sorted(set(WEIGHTINGS) - REFUSING)


def _losses(a, b):
    return {"a": tf.constant(a), "b": tf.constant(b)}


def _drive(weighting) -> tuple[list[float], list[float]]:
    """A few epochs and steps; the effective weights and totals seen."""
    seen, totals = [], []
    grads = {
        "a": [tf.constant([3.0, 4.0]), tf.constant([1.0])],
        "b": [tf.constant([-1.0, 2.0]), None],
    }
    epochs = [
        {"a_loss": 0.6, "b_loss": 0.3, "a_auc": 0.7, "b_auc": 0.8},
        {"a_loss": 0.3, "b_loss": 0.25, "a_auc": 0.75, "b_auc": 0.85},
    ]
    for epoch, logs in enumerate(epochs):
        weighting.on_epoch_begin(epoch)
        for step_losses in (_losses(0.8, 0.4), _losses(0.5, 0.35)):
            if weighting.uses_gradients:
                _, total, weights, _ = weighting.gradient_update(
                    step_losses, grads, [True, False]
                )
            else:
                total, weights = weighting(
                    step_losses, training=True, return_weights=True
                )
            seen.append([float(weights[k]) for k in PRIOR])
            totals.append(float(total))
            assert [float(w) for w in weighting.task_weights().values()] == (
                pytest.approx(seen[-1])
            )
        weighting.on_epoch_end(epoch, logs)
    return seen, totals


@pytest.mark.parametrize("name", COMBINING)
def test_task_weight_multiplies_the_strategys_weights(name):
    """Effective ``w_k = Task.weight_k · s_k``, ``s_k`` the strategy's own."""
    weighted, weighted_totals = _drive(build_weighting(name, WEIGHTED, seed=3))
    plain, _ = _drive(build_weighting(name, PLAIN, seed=3))
    prior = np.array(list(PRIOR.values()))
    np.testing.assert_allclose(weighted, np.array(plain) * prior, rtol=1e-5)
    steps = [(0.8, 0.4), (0.5, 0.35)] * 2
    expected = [w[0] * a + w[1] * b for w, (a, b) in zip(weighted, steps, strict=True)]
    np.testing.assert_allclose(weighted_totals, expected, rtol=1e-5)
    assert build_weighting(name, WEIGHTED).get_config()["task_weight"] == PRIOR


def test_pcgrad_weighs_each_task_gradient_before_the_surgery():
    w = build_weighting("pcgrad", WEIGHTED, seed=0)
    grads = {"a": [tf.constant([1.0, 0.0])], "b": [tf.constant([-1.0, 1.0])]}
    out, _, _, _ = w.gradient_update(_losses(1.0, 1.0), grads, [True])
    # g_a = (2, 0), g_b = (-0.5, 0.5); g_a·g_b = -1 < 0:
    # g_a -= -1/0.5 g_b -> (1, 1); g_b -= -1/4 g_a -> (0, 0.5); sum (1, 1.5).
    np.testing.assert_allclose(out[0].numpy(), [1.0, 1.5], rtol=1e-6)


def test_fixed_multiplies_its_weights_argument_by_the_task_weight():
    w = build_weighting("fixed", WEIGHTED, {"weights": {"a": 3.0}})
    total = w(_losses(1.0, 2.0))
    assert float(total) == pytest.approx(6.0 * 1.0 + 0.5 * 2.0)
    assert [float(v) for v in w.task_weights().values()] == [6.0, 0.5]
    again = FixedWeighting.from_config(w.get_config())
    assert float(again(_losses(1.0, 2.0))) == pytest.approx(float(total))


@pytest.mark.parametrize("name", sorted(REFUSING))
def test_strategies_that_would_absorb_a_task_weight_refuse_it(name):
    cls = WEIGHTINGS[name].__name__
    with pytest.raises(
        ValueError,
        match=rf"{cls} does not take `Task.weight` \(.+\): task 'a' has `weight=2.0`",
    ):
        build_weighting(name, WEIGHTED)
    assert build_weighting(name, PLAIN).task_weight == {"a": 1.0, "b": 1.0}


def test_equal_refuses_a_weights_argument():
    with pytest.raises(ValueError, match=r"EqualWeighting has no `weights`"):
        EqualWeighting(["a", "b"], weights={"a": 2.0})
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['weights'\]"):
        build_weighting("equal", PLAIN, {"weights": {"a": 2.0}})


def test_bad_task_weight():
    with pytest.raises(ValueError, match=r"`task_weight` names unknown tasks \['c'\]"):
        FixedWeighting(["a", "b"], task_weight={"c": 1.0})
    with pytest.raises(ValueError, match=r"`task_weight\['a'\]` must be >= 0"):
        FixedWeighting(["a", "b"], task_weight={"a": -1.0})
