"""Every loss-weighting strategy's arithmetic, in closed form."""

import doctest
import importlib
import math
import re

import numpy as np
import pytest
import tensorflow as tf

import mtrec.weighting
from mtrec.models import Task
from mtrec.weighting import WEIGHTINGS
from mtrec.weighting import DynamicTaskPrioritization
from mtrec.weighting import DynamicWeightAverage
from mtrec.weighting import EqualWeighting
from mtrec.weighting import FixedWeighting
from mtrec.weighting import GradNorm
from mtrec.weighting import GradNormStatic
from mtrec.weighting import InitialLossWeighting
from mtrec.weighting import LossBalancedTaskWeighting
from mtrec.weighting import PCGrad
from mtrec.weighting import RandomLossWeighting
from mtrec.weighting import RealtimeWeighting
from mtrec.weighting import UncertaintyWeighting
from mtrec.weighting import build_weighting
from mtrec.weighting import weighting_arguments
from mtrec.weighting.dtp import dtp_weights
from mtrec.weighting.dwa import dwa_weights
from mtrec.weighting.gradnorm import gradnorm_weight_gradient
from mtrec.weighting.gradnorm import renormalize
from mtrec.weighting.pcgrad import pcgrad_project

TASKS = ["a", "b"]
#: The strategies tested in this file; a new registry entry must be added.
TESTED = {
    "fixed",
    "equal",
    "initial_loss",
    "realtime",
    "grad_norm_static",
    "uncertainty",
    "gradnorm",
    "dwa",
    "lbtw",
    "dtp",
    "pcgrad",
    "rlw",
}


def losses(a, b):
    return {"a": tf.constant(a, tf.float32), "b": tf.constant(b, tf.float32)}


def weights_of(weighting):
    return [float(v) for v in weighting.task_weights().values()]


def test_every_registered_strategy_is_exported_and_tested():
    assert set(WEIGHTINGS) == TESTED
    for cls in WEIGHTINGS.values():
        assert cls.__name__ in mtrec.weighting.__all__
        assert "References:" in cls.__doc__, cls


@pytest.mark.parametrize("module", sorted({c.__module__ for c in WEIGHTINGS.values()}))
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    globs = {**vars(mod), "tf": tf, "pcgrad_project": pcgrad_project}
    result = doctest.testmod(mod, globs=globs, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_config_round_trip_and_registry_construction(name):
    tasks = {"a": Task("a", "click"), "b": Task("b", "dwell", kind="regression")}
    weighting = build_weighting(name, tasks, seed=3)
    assert weighting.task_names == TASKS
    config = weighting.get_config()
    clone = type(weighting).from_config(config)
    assert clone.get_config() == config
    valid = re.escape(str(weighting_arguments(name)))
    unknown = r"unknown argument\(s\) \['no_such_argument'\]"
    with pytest.raises(ValueError, match=rf"{unknown}; valid for {name!r}: {valid}"):
        build_weighting(name, tasks, {"no_such_argument": 1})


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown loss weighting 'nope'"):
        build_weighting("nope", {"a": Task("a", "click")})


def test_fixed_uses_task_weights_and_equal_sums():
    tasks = {"a": Task("a", "click", weight=0.5), "b": Task("b", "y", weight=3.0)}
    fixed = FixedWeighting.from_tasks(tasks)
    assert float(fixed(losses(2.0, 1.0))) == pytest.approx(0.5 * 2.0 + 3.0 * 1.0)
    equal = EqualWeighting.from_tasks({k: Task(k, "y") for k in tasks})
    assert float(equal(losses(2.0, 1.0))) == pytest.approx(3.0)
    with pytest.raises(ValueError, match=r"`weights\['a'\]` must be >= 0"):
        FixedWeighting(TASKS, weights={"a": -1})
    with pytest.raises(ValueError, match="expects losses for"):
        fixed({"a": tf.constant(1.0)})


def test_initial_loss_divides_by_the_first_losses_and_is_scale_invariant():
    w = InitialLossWeighting(TASKS)
    assert float(w(losses(0.5, 0.1), training=True)) == pytest.approx(2.0)
    assert weights_of(w) == pytest.approx([2.0, 10.0])
    assert float(w(losses(0.25, 0.2), training=True)) == pytest.approx(0.5 + 2.0)
    scaled = InitialLossWeighting(TASKS)
    scaled(losses(5.0, 0.3), training=True)
    assert float(scaled(losses(2.5, 0.6), training=True)) == pytest.approx(2.5)
    # Evaluation does not set the reference.
    fresh = InitialLossWeighting(TASKS)
    fresh(losses(9.0, 9.0), training=False)
    assert fresh.recorded.numpy().tolist() == [0.0, 0.0]


def test_initial_loss_waits_for_a_masked_task_with_no_rows():
    w = InitialLossWeighting(TASKS)
    assert float(w(losses(0.5, 0.0), training=True)) == pytest.approx(1.0)
    w(losses(0.5, 0.2), training=True)
    assert weights_of(w) == pytest.approx([2.0, 5.0])


def test_realtime_terms_are_one_and_gradients_are_divided_by_the_loss():
    w = RealtimeWeighting(TASKS)
    la, lb = tf.Variable(0.5), tf.Variable(0.1)
    with tf.GradientTape() as tape:
        total = w({"a": la * 1.0, "b": lb * 1.0})
    assert float(total) == pytest.approx(2.0)
    ga, gb = tape.gradient(total, [la, lb])
    assert float(ga) == pytest.approx(1 / 0.5)
    assert float(gb) == pytest.approx(1 / 0.1)
    assert float(w(losses(0.5, 0.0))) == pytest.approx(1.0)


def test_uncertainty_total_and_gradient_in_closed_form():
    w = UncertaintyWeighting(TASKS, task_kinds={"b": "regression"})
    w.log_variance.assign([0.5, -0.3])
    la, lb = 0.8, 2.0
    with tf.GradientTape() as tape:
        total = w(losses(la, lb))
    expected = math.exp(-0.5) * la + 0.5 + 0.5 * math.exp(0.3) * lb + 0.5 * -0.3
    assert float(total) == pytest.approx(expected, rel=1e-6)
    grad = tape.gradient(total, w.log_variance).numpy()
    assert grad == pytest.approx(
        [-math.exp(-0.5) * la + 1, -0.5 * math.exp(0.3) * lb + 0.5], rel=1e-5
    )
    _, weights = w(losses(la, lb), return_weights=True)
    assert [float(v) for v in weights.values()] == pytest.approx(
        [math.exp(-0.5), 0.5 * math.exp(0.3)], rel=1e-6
    )
    assert w.log_variance.trainable
    with pytest.raises(ValueError, match="must be one of"):
        UncertaintyWeighting(TASKS, task_kinds={"a": "ordinal"})


def test_dwa_weights_from_loss_histories():
    w = DynamicWeightAverage(TASKS, temperature=2.0)
    w.on_epoch_end(0, {"a_loss": 0.5, "b_loss": 0.2})
    assert weights_of(w) == [1.0, 1.0]  # one epoch of history: still 1
    w.on_epoch_end(1, {"a_loss": 0.25, "b_loss": 0.2})
    r = np.array([0.25 / 0.5, 0.2 / 0.2])
    expected = 2 * np.exp(r / 2) / np.exp(r / 2).sum()
    assert weights_of(w) == pytest.approx(expected.tolist(), rel=1e-6)
    w.on_epoch_end(2, {"a_loss": 0.25, "b_loss": 0.1})
    r = np.array([1.0, 0.5])
    assert weights_of(w) == pytest.approx(
        (2 * np.exp(r / 2) / np.exp(r / 2).sum()).tolist(), rel=1e-6
    )
    assert float(w(losses(1.0, 1.0))) == pytest.approx(sum(weights_of(w)))
    assert dwa_weights([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 5.0).numpy() == pytest.approx(
        [1.0, 1.0, 1.0]
    )
    with pytest.raises(KeyError, match="a_loss"):
        w.on_epoch_end(3, {"b_loss": 0.1})


def test_lbtw_weights_are_loss_ratios_to_the_epochs_first_batch():
    w = LossBalancedTaskWeighting(TASKS, alpha=0.5)
    w.on_epoch_begin(0)
    w(losses(0.8, 0.4), training=True)
    assert weights_of(w) == pytest.approx([1.0, 1.0])
    total = w(losses(0.2, 0.1), training=True)
    assert weights_of(w) == pytest.approx([0.5, 0.5])
    assert float(total) == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)
    w.on_epoch_begin(1)  # new reference: the next batch
    w(losses(0.2, 0.1), training=True)
    w(losses(0.05, 0.1), training=True)
    assert weights_of(w) == pytest.approx([0.5, 1.0])
    run = LossBalancedTaskWeighting(TASKS, alpha=1.0, reference="start")
    run(losses(1.0, 1.0), training=True)
    run.on_epoch_begin(1)
    run(losses(0.3, 0.6), training=True)
    assert weights_of(run) == pytest.approx([0.3, 0.6])


def test_dtp_weights_from_smoothed_kpis():
    w = DynamicTaskPrioritization(TASKS, gamma=2.0, alpha=0.5)
    assert weights_of(w) == [1.0, 1.0]
    w.on_epoch_end(0, {"a_auc": 0.75, "b_auc": 0.9})
    expected = [-(0.25**2) * math.log(0.75), -(0.1**2) * math.log(0.9)]
    assert weights_of(w) == pytest.approx(expected, rel=1e-5)
    w.on_epoch_end(1, {"a_auc": 0.85, "b_auc": 0.9})  # averages: 0.8, 0.9
    expected = [-(0.2**2) * math.log(0.8), -(0.1**2) * math.log(0.9)]
    assert weights_of(w) == pytest.approx(expected, rel=1e-5)
    regression = DynamicTaskPrioritization(
        TASKS, task_kinds={"b": "regression"}, gamma=1.0
    )
    regression.on_epoch_end(0, {"a_auc": 0.5, "b_rmse": 1.0})  # b: 1 / (1 + 1)
    assert weights_of(regression) == pytest.approx(
        [0.5 * math.log(2.0), 0.5 * math.log(2.0)], rel=1e-5
    )
    assert dtp_weights([1.0], 1.0).numpy()[0] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(KeyError, match="b_auc"):
        w.on_epoch_end(2, {"a_auc": 0.7})


def test_rlw_draws_k_times_a_softmax_seeded_by_step():
    w = RandomLossWeighting(TASKS, seed=7)
    draws = []
    for _ in range(3):
        w(losses(1.0, 1.0), training=True)
        draws.append(weights_of(w))
    for d in draws:
        assert sum(d) == pytest.approx(2.0)
        assert min(d) > 0
    assert draws[0] != draws[1]
    z = tf.random.stateless_normal([2], seed=tf.constant([7, 0], tf.int64))
    assert draws[0] == pytest.approx((2 * tf.nn.softmax(z)).numpy().tolist())
    again = RandomLossWeighting(TASKS, seed=7)
    again.step.assign(1)  # a resumed run continues the sequence
    again(losses(1.0, 1.0), training=True)
    assert weights_of(again) == pytest.approx(draws[1])
    assert float(w(losses(1.0, 3.0))) == pytest.approx(4.0)  # not training: 1s


def test_pcgrad_projects_two_conflicting_gradients_exactly():
    g1, g2 = tf.constant([1.0, 0.0]), tf.constant([-1.0, 1.0])
    (p1,), (p2,) = pcgrad_project([[g1], [g2]])
    # g1 · g2 = -1: p1 = g1 - (-1 / 2) g2, p2 = g2 - (-1 / 1) g1.
    np.testing.assert_allclose(p1.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(p2.numpy(), [0.0, 1.0])
    assert float(tf.tensordot(p1, g2, 1)) == pytest.approx(0.0)
    assert float(tf.tensordot(p2, g1, 1)) == pytest.approx(0.0)
    # Gradients that do not conflict are left alone.
    (q1,), (q2,) = pcgrad_project([[g1], [tf.constant([1.0, 1.0])]])
    np.testing.assert_allclose(q1.numpy(), [1.0, 0.0])
    np.testing.assert_allclose(q2.numpy(), [1.0, 1.0])


def test_pcgrad_over_several_variables_and_a_task_specific_one():
    w = PCGrad(TASKS, seed=0)
    shared_a = [tf.constant([1.0]), tf.constant([0.0])]
    shared_b = [tf.constant([-1.0]), tf.constant([1.0])]
    task_grads = {
        "a": [*shared_a, tf.constant([3.0])],
        "b": [*shared_b, None],
    }
    grads, total, weights, own = w.combine_gradients(
        losses(0.5, 0.25), task_grads, [True, True, False], None
    )
    # Seen as one vector, the same projection as above; summed over tasks.
    np.testing.assert_allclose(grads[0].numpy(), [0.5 + 0.0])
    np.testing.assert_allclose(grads[1].numpy(), [0.5 + 1.0])
    np.testing.assert_allclose(grads[2].numpy(), [3.0])
    assert float(total) == pytest.approx(0.75)
    assert own == []


def test_pcgrad_three_tasks_in_a_given_order():
    g = [
        [tf.constant([1.0, 0.0])],
        [tf.constant([-1.0, 1.0])],
        [tf.constant([0.0, -1.0])],
    ]
    orders = tf.constant([[1, 2, 0], [0, 2, 1], [0, 1, 2]])
    out = pcgrad_project(g, orders)
    # Task 0: against 1 -> (0.5, 0.5); against 2: (0.5, 0.5)·(0, -1) < 0 ->
    # (0.5, 0.5) - (-0.5 / 1)(0, -1) = (0.5, 0).
    np.testing.assert_allclose(out[0][0].numpy(), [0.5, 0.0], atol=1e-7)


def test_grad_norm_static_gives_every_task_a_unit_gradient_on_shared_params():
    w = GradNormStatic(TASKS)
    task_grads = {
        "a": [tf.constant([3.0, 4.0]), tf.constant([1.0, 1.0])],
        "b": [tf.constant([0.0, 2.0]), None],
    }
    grads, total, weights, _ = w.combine_gradients(
        losses(1.0, 2.0), task_grads, [True, False], None
    )
    assert [float(v) for v in weights.values()] == pytest.approx([0.2, 0.5])
    np.testing.assert_allclose(grads[0].numpy(), [0.6, 0.8 + 1.0], rtol=1e-6)
    np.testing.assert_allclose(grads[1].numpy(), [0.2, 0.2], rtol=1e-6)
    assert float(total) == pytest.approx(0.2 * 1.0 + 0.5 * 2.0)
    # Scale invariance: ×10 on task a's loss (so its gradients) changes nothing.
    scaled = {"a": [10 * g for g in task_grads["a"]], "b": task_grads["b"]}
    again, _, _, _ = w.combine_gradients(losses(10.0, 2.0), scaled, [True, False], None)
    np.testing.assert_allclose(again[0].numpy(), grads[0].numpy(), rtol=1e-6)
    # A masked task with no row (zero gradient) gets weight 0.
    empty = {"a": task_grads["a"], "b": [tf.zeros(2), None]}
    _, _, weights, _ = w.combine_gradients(losses(1.0, 0.0), empty, [True, False], None)
    assert float(weights["b"]) == 0.0


def test_gradnorm_update_direction_in_closed_form():
    # alpha = 0: the target is the mean norm, so the larger norm is pushed down.
    grad = gradnorm_weight_gradient([1.0, 1.0], [2.0, 1.0], [1.0, 0.5], alpha=0.0)
    np.testing.assert_allclose(grad.numpy(), [2.0, -1.0])
    # alpha = 1: r = (1, 0.25) / 0.625 = (1.6, 0.4); targets 1.5 r = (2.4, 0.6);
    # G = (2, 1) is below the target for a (trains slower) -> its weight grows.
    grad = gradnorm_weight_gradient([1.0, 1.0], [2.0, 1.0], [1.0, 0.25], alpha=1.0)
    np.testing.assert_allclose(grad.numpy(), [-2.0, 1.0])
    np.testing.assert_allclose(renormalize([1.0, 3.0]).numpy(), [0.5, 1.5])


def test_gradnorm_step_updates_and_renormalises_the_weights():
    w = GradNorm(TASKS, alpha=0.0)
    kernel = [tf.constant([[3.0], [4.0]]), tf.constant([[0.0], [1.0]])]  # norms 5, 1
    task_grads = {"a": [kernel[0], tf.constant([1.0])], "b": [kernel[1], None]}
    grads, total, weights, own = w.combine_gradients(
        losses(0.7, 0.3), task_grads, [True, False], [0]
    )
    np.testing.assert_allclose(grads[0].numpy(), [[3.0], [5.0]])
    ((weight_grad, variable),) = own
    assert variable is w.loss_weights
    # G = (5, 1), mean 3: sign(G - 3) * n = (5, -1).
    np.testing.assert_allclose(weight_grad.numpy(), [5.0, -1.0])
    tf.keras.optimizers.SGD(0.1).apply_gradients(own)
    np.testing.assert_allclose(w.loss_weights.numpy(), [0.5, 1.1], rtol=1e-6)
    w.after_apply()
    np.testing.assert_allclose(w.loss_weights.numpy(), [2 * 0.5 / 1.6, 2 * 1.1 / 1.6])
    assert w.recorded.numpy().tolist() == [1.0, 1.0]
    np.testing.assert_allclose(w.initial_losses.numpy(), [0.7, 0.3], rtol=1e-6)
    with pytest.raises(ValueError, match="GradNorm needs the last shared layer"):
        w.combine_gradients(losses(0.7, 0.3), task_grads, [False, False], [])


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (DynamicWeightAverage, {"temperature": 0}, "`temperature` must be > 0"),
        (LossBalancedTaskWeighting, {"alpha": -1}, "`alpha` must be >= 0"),
        (LossBalancedTaskWeighting, {"reference": "x"}, "`reference` must be one of"),
        (DynamicTaskPrioritization, {"gamma": -1}, "`gamma` must be >= 0"),
        (DynamicTaskPrioritization, {"alpha": 0}, r"`alpha` must be in \(0, 1\]"),
        (GradNorm, {"alpha": -0.5}, "`alpha` must be >= 0"),
    ],
)
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(TASKS, **kwargs)
    with pytest.raises(ValueError, match="`task_names` must not be empty"):
        cls([])
