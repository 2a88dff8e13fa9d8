"""The ranker's view of a backbone: gated or not, and GradNorm's last shared layer."""

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.layers import CGC
from mtrec.layers import PLE
from mtrec.layers import MMoE
from mtrec.layers import OMoE
from mtrec.layers import SharedBottom
from mtrec.layers import separate_matmuls
from mtrec.models import GatedBackbone
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.models.backbones import shared_layer_variables

TASKS = ["ctr", "cvr"]


def _batch(n=32):
    rng = np.random.default_rng(0)
    click = (rng.random(n) < 0.5).astype(np.float32)
    return {
        "city": tf.constant(rng.choice(["a", "b", "c"], n)),
        "price": tf.constant(rng.normal(size=n).astype(np.float32)),
        "click": tf.constant(click),
        "conversion": tf.constant(click * (rng.random(n) < 0.5).astype(np.float32)),
    }


def _model(backbone, weighting="gradnorm", cross_layers=0):
    return MultiTaskRanker(
        city_price_features(),
        backbone,
        [Task("ctr", "click"), Task("cvr", "conversion")],
        tower_units=[4],
        weighting=weighting,
        cross_layers=cross_layers,
    )


def _gradnorm_layer(model):
    batch = _batch()
    model(batch)
    variables = list(model.trainable_variables)
    with separate_matmuls(), tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(batch, training=True)
    grads = {k: tape.gradient(losses[k], variables) for k in losses}
    _, layer = model.shared_layout(variables, grads)
    return [variables[i] for i in layer]


class _SignatureOnly(tf.keras.layers.Layer):
    """Has a ``return_gates`` argument but does not declare the interface."""

    def call(self, inputs, training=None, return_gates=False):
        return {t: inputs for t in TASKS}


BACKBONES = {
    "SharedBottom": lambda: SharedBottom(TASKS, units=[8, 6]),
    "OMoE": lambda: OMoE(TASKS, num_experts=3, expert_units=[8, 6]),
    "MMoE": lambda: MMoE(TASKS, num_experts=3, expert_units=[8, 6]),
    "CGC": lambda: CGC(TASKS, num_shared_experts=2, expert_units=[8, 6]),
    "PLE": lambda: PLE(TASKS, num_levels=2, expert_units=[8, 6]),
}


def _expected_layer(backbone):
    """The last shared layer, per backbone (mtrec.models.backbones)."""
    if isinstance(backbone, SharedBottom):
        kernels = [v for v in backbone.trainable_variables if v.shape.rank == 2]
        return [kernels[-1]]
    if isinstance(backbone, PLE):
        return [backbone.levels[-1].shared_experts.kernels[-1]]
    if isinstance(backbone, CGC):
        return [backbone.shared_experts.kernels[-1]]
    return [backbone.experts.kernels[-1]]


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gated_backbones_are_recognised_by_the_interface(name):
    backbone = BACKBONES[name]()
    gated = name != "SharedBottom"
    assert isinstance(backbone, GatedBackbone) == gated
    assert _model(backbone, weighting="equal").has_gates == gated


def test_a_return_gates_argument_alone_does_not_make_a_gated_backbone():
    assert not _model(_SignatureOnly(), weighting="equal").has_gates
    registered = type("Registered", (_SignatureOnly,), {})
    GatedBackbone.register(registered)
    assert _model(registered(), weighting="equal").has_gates


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradnorm_w_is_the_backbones_last_shared_layer(name):
    model = _model(BACKBONES[name]())
    layer = _gradnorm_layer(model)
    expected = _expected_layer(model.backbone)
    assert len(layer) == len(expected) == 1
    assert layer[0] is expected[0]
    assert layer[0] is shared_layer_variables(model.backbone)[0]
    assert "gate" not in layer[0].name


def test_omoe_w_is_the_experts_not_the_shared_gate():
    """The old rule, "the last kernel every task reaches", picked OMoE's gate."""
    model = _model(OMoE(TASKS, num_experts=3, expert_units=[8, 6]))
    (w,) = _gradnorm_layer(model)
    assert w is model.backbone.experts.kernels[-1]
    assert all(w is not v for v in model.backbone.gate.trainable_variables)


def test_without_a_shared_layer_w_is_the_layer_below():
    no_shared = CGC(TASKS, num_shared_experts=0, num_task_experts=1, expert_units=[4])
    assert shared_layer_variables(no_shared) == []
    crossed = _model(no_shared, cross_layers=1)
    (w,) = _gradnorm_layer(crossed)
    assert w is crossed.crosses[-1].trainable_variables[0]
    plain = _model(
        CGC(TASKS, num_shared_experts=0, num_task_experts=1, expert_units=[4])
    )
    layer = _gradnorm_layer(plain)
    assert len(layer) == len(plain.feature_layer.trainable_variables) >= 1


def test_an_unknown_backbone_must_name_its_shared_layer():
    with pytest.raises(TypeError, match=r"`shared_layer_variables\(\)` method"):
        _gradnorm_layer(_model(_SignatureOnly()))
    # Only GradNorm asks: another weighting trains such a backbone.
    assert _gradnorm_layer(_model(_SignatureOnly(), weighting="pcgrad")) == []
