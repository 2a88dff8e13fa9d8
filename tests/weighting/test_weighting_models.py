"""Every strategy trains ESMM, regression and masked-task models; state is kept."""

import math

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.layers import MMoE
from mtrec.layers import SharedBottom
from mtrec.layers import separate_matmuls
from mtrec.models import ESMM
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.models import esmm_supervised_tasks
from mtrec.training.callbacks import WeightingUpdate
from mtrec.weighting import WEIGHTINGS
from mtrec.weighting import build_weighting

KINDS = ("esmm", "regression", "masked")


def _model(kind: str, name: str) -> MultiTaskRanker:
    if kind == "esmm":
        ctr, cvr = Task("ctr", "click"), Task("cvr", "conversion", condition="click")
        supervised = esmm_supervised_tasks(ctr, cvr, [], "ctcvr")
        return ESMM(
            city_price_features(),
            SharedBottom(["ctr", "cvr"], units=[8]),
            ctr,
            cvr,
            tower_units=[4],
            weighting=build_weighting(name, supervised, seed=1),
        )
    if kind == "regression":
        tasks = [Task("ctr", "click"), Task("dwell", "dwell", kind="regression")]
        backbone = SharedBottom(["ctr", "dwell"], units=[8])
    else:  # a CVR head trained on clicked rows only, on a gated backbone
        tasks = [Task("ctr", "click"), Task("cvr", "conversion", condition="click")]
        backbone = MMoE(["ctr", "cvr"], num_experts=2, expert_units=[8])
    weighting = build_weighting(name, {t.name: t for t in tasks}, seed=1)
    return MultiTaskRanker(
        city_price_features(), backbone, tasks, tower_units=[4], weighting=weighting
    )


def _data(n=192, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(["a", "b", "c"], n)
    click = ((city == "a") | (rng.random(n) < 0.2)).astype(np.float32)
    click[:64] = 0.0  # the first batch has no clicked row: the CVR loss is 0
    conversion = (click * (rng.random(n) < 0.4)).astype(np.float32)
    return {
        "city": city,
        "price": rng.normal(size=n).astype(np.float32),
        "click": click,
        "conversion": conversion,
        "dwell": (3.0 * click + rng.exponential(size=n)).astype(np.float32),
    }


def _fit(model, epochs=2):
    tf.keras.utils.set_random_seed(0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    ds = tf.data.Dataset.from_tensor_slices(_data()).batch(64)
    return model.fit(ds, epochs=epochs, verbose=0, callbacks=[WeightingUpdate()])


CASES = [
    pytest.param(
        name,
        kind,
        marks=() if kind == "esmm" else pytest.mark.slow,
        id=f"{name}-{kind}",
    )
    for name in sorted(WEIGHTINGS)
    for kind in KINDS
]


@pytest.mark.parametrize("name, kind", CASES)
def test_every_strategy_trains_every_kind_of_model(name, kind):
    model = _model(kind, name)
    supervised = list(model.supervised_tasks())
    before = [v.numpy().copy() for v in model.weighting.trainable_variables]
    history = _fit(model).history
    for out in supervised:
        assert len(history[f"weight_{out}"]) == 2
        assert all(math.isfinite(w) and w >= 0 for w in history[f"weight_{out}"])
        assert all(math.isfinite(x) for x in history[f"{out}_loss"])
    assert all(math.isfinite(x) for x in history["loss"])
    for v in model.trainable_variables:
        assert np.all(np.isfinite(v.numpy())), v.name
    # Learnable weights (uncertainty, gradnorm) are trained with the model.
    for old, new in zip(before, model.weighting.trainable_variables, strict=True):
        assert not np.allclose(old, new.numpy())
    predictions = model(
        {k: tf.constant(v[:5]) for k, v in _data().items()}, training=False
    )
    assert all(np.all(np.isfinite(p.numpy())) for p in predictions.values())


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm", "dwa"])
def test_weighting_state_is_checkpointed_and_restored(tmp_path, name):
    model = _model("esmm", name)
    _fit(model, epochs=3)
    state = [v.numpy().copy() for v in model.weighting.weights]
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = _model("esmm", name)
    fresh(_data(4))
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    assert len(fresh.weighting.weights) == len(state) > 1
    for old, new in zip(state, fresh.weighting.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def test_gradient_step_applies_the_combined_gradients():
    """grad_norm_static through fit equals the update computed by hand."""
    model = _model("regression", "grad_norm_static")
    batch = {k: tf.constant(v[64:128]) for k, v in _data().items()}
    model(batch)
    variables = list(model.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(batch, training=True)
    grads = {k: tape.gradient(losses[k], variables) for k in losses}
    shared_refs = {v.ref() for v in model.feature_layer.trainable_variables} | {
        v.ref() for v in model.backbone.trainable_variables
    }
    norms = {
        k: math.sqrt(
            sum(
                float(tf.reduce_sum(tf.square(tf.convert_to_tensor(g))))
                for g, v in zip(grads[k], variables, strict=True)
                if g is not None and v.ref() in shared_refs
            )
        )
        for k in grads
    }
    expected = []
    for i, v in enumerate(variables):
        step = sum(
            tf.convert_to_tensor(grads[k][i]).numpy() / norms[k]
            for k in grads
            if grads[k][i] is not None
        )
        expected.append(v.numpy() - 0.5 * step)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
    history = model.fit(
        tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0
    ).history
    for v, e in zip(variables, expected, strict=True):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-4, atol=1e-6)
    assert history["weight_ctr"][0] == pytest.approx(1 / norms["ctr"], rel=1e-4)
    assert history["weight_dwell"][0] == pytest.approx(1 / norms["dwell"], rel=1e-4)


def _layout(model, batch):
    model(batch)
    variables = list(model.trainable_variables)
    with separate_matmuls(), tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(batch, training=True)
    grads = {k: tape.gradient(losses[k], variables) for k in losses}
    return variables, *model.shared_layout(variables, grads)


def test_shared_layout_excludes_single_task_gates_and_gives_gradnorm_its_layer():
    batch = {k: tf.constant(v[64:128]) for k, v in _data().items()}
    variables, shared, layer = _layout(_model("masked", "pcgrad"), batch)
    names = {v.name: s for v, s in zip(variables, shared, strict=True)}
    assert any(s for n, s in names.items() if "embedding" in n)
    assert not any(s for n, s in names.items() if "gate" in n)
    assert not any(s for n, s in names.items() if "tower" in n)
    assert layer == []  # PCGrad does not ask for W
    model = _model("masked", "gradnorm")
    variables, _, layer = _layout(model, batch)
    assert len(layer) == 1
    assert variables[layer[0]] is model.backbone.experts.kernels[-1]
    bottom = _model("regression", "gradnorm")
    variables, _, layer = _layout(bottom, batch)
    kernels = [v for v in bottom.backbone.trainable_variables if len(v.shape) == 2]
    assert len(layer) == 1 and variables[layer[0]] is kernels[-1]


def test_fused_matmul_gives_exact_zero_gradients_to_other_tasks_gates():
    """Outside ``separate_matmuls`` the shared matmul connects every gate to
    every task with an exactly zero gradient; inside it the gate of one task
    is not reached by the other (``None``): the values are the same."""
    model = _model("masked", "pcgrad")
    batch = {k: tf.constant(v[64:128]) for k, v in _data().items()}
    model(batch)
    variables = list(model.trainable_variables)
    grads = {}
    for mode in ("fused", "separate"):
        with tf.GradientTape(persistent=True) as tape:
            if mode == "separate":
                with separate_matmuls():
                    losses = model.task_losses(batch, training=True)
            else:
                losses = model.task_losses(batch, training=True)
        grads[mode] = {k: tape.gradient(losses[k], variables) for k in losses}
    gate_cvr = [i for i, v in enumerate(variables) if "gate_cvr" in v.name]
    assert gate_cvr
    for i in gate_cvr:
        assert grads["separate"]["ctr"][i] is None
        np.testing.assert_array_equal(grads["fused"]["ctr"][i], 0.0)
    for task in ("ctr", "cvr"):
        for fused, separate in zip(
            grads["fused"][task], grads["separate"][task], strict=True
        ):
            if separate is not None:
                np.testing.assert_allclose(
                    tf.convert_to_tensor(fused),
                    tf.convert_to_tensor(separate),
                    rtol=1e-5,
                    atol=1e-7,
                )


@pytest.mark.parametrize("name", ["pcgrad", "gradnorm"])
def test_gradient_step_sees_gates_as_task_specific(name):
    """The gradient train step traces with separate matmuls: in `fit`, no
    gate of a gated backbone counts as shared, and GradNorm's kernel is not a
    gate."""
    model = _model("masked", name)
    seen = []
    layout = model.shared_layout

    def spy(variables, task_grads):
        shared, layer = layout(variables, task_grads)
        seen.append((list(variables), shared, layer))
        return shared, layer

    model.shared_layout = spy
    _fit(model, epochs=1)
    assert seen
    variables, shared, layer = seen[-1]
    flags = {v.name: s for v, s in zip(variables, shared, strict=True)}
    gates = [n for n in flags if "gate" in n]
    assert gates and not any(flags[n] for n in gates)
    assert any(s for n, s in flags.items() if "experts" in n)
    assert all("gate" not in variables[i].name for i in layer)
    assert bool(layer) == (name == "gradnorm")
