"""``predict_jit_compile``: predict through XLA, the same predictions and the
same input errors as the uncompiled model."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.features import FeatureEmbedding
from mtrec.layers import PLE
from mtrec.layers import MMoE
from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.models.compiled_predict import CompiledForward
from mtrec.models.compiled_predict import compiles_prediction
from mtrec.models.compiled_predict import pad_batch
from mtrec.models.compiled_predict import padded_batch_size
from mtrec.training import Predictor

ROWS = 300


def encoded(name: str, num_ids: int, dim: int) -> dict:
    return {
        "name": name,
        "kind": "categorical",
        "dtype": "int64",
        "num_ids": num_ids,
        "embedding_dim": dim,
    }


def encoded_features():
    """Encoded ids (two widths), a z-scored dense value with a fill value,
    a bucketised one and a plain one: every kind XLA can compile."""
    return FeatureEmbedding(
        [
            {
                "name": "city",
                "kind": "categorical",
                "dtype": "int64",
                "num_ids": 5,
                "embedding_dim": 4,
            },
            {
                "name": "shop",
                "kind": "categorical",
                "dtype": "int64",
                "num_ids": 7,
                "embedding_dim": 4,
            },
            {
                "name": "os",
                "kind": "categorical",
                "dtype": "int64",
                "num_ids": 3,
                "embedding_dim": 2,
            },
            {"name": "price", "kind": "dense", "fill_value": 0.0},
            {"name": "age", "kind": "dense", "num_buckets": 4, "embedding_dim": 2},
            {"name": "hour", "kind": "dense", "normalization": "none"},
        ],
        dense_stats={
            "price": {"mean": 1.0, "std": 2.0, "boundaries": None},
            "age": {"mean": 0.0, "std": 1.0, "boundaries": [20.0, 30.0, 40.0]},
            "hour": {"mean": 0.0, "std": 1.0, "boundaries": None},
        },
    )


def rows(n: int = ROWS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "city": rng.integers(0, 5, n),
        "shop": rng.integers(0, 7, n),
        "os": rng.integers(0, 3, n),
        "price": rng.normal(1.0, 2.0, n).astype(np.float32),
        "age": rng.uniform(15, 60, n).astype(np.float32),
        "hour": rng.uniform(0, 24, n).astype(np.float32),
        "click": (rng.random(n) < 0.5).astype(np.float32),
        "buy": (rng.random(n) < 0.2).astype(np.float32),
    }


def model(kind: str, compiled: bool):
    tf.keras.utils.set_random_seed(3)
    tasks = [Task("click", "click"), Task("buy", "buy")]
    common = {"tower_units": [4], "predict_jit_compile": compiled}
    if kind == "esmm":
        built = ESMM(
            encoded_features(),
            SharedBottom(["ctr", "cvr"], units=[8]),
            Task("ctr", "click"),
            Task("cvr", "buy", condition="click"),
            **common,
        )
    else:
        backbone = {
            "mmoe": lambda: MMoE(["click", "buy"], num_experts=3, expert_units=[8]),
            "ple": lambda: PLE(
                ["click", "buy"],
                num_levels=2,
                num_shared_experts=1,
                num_task_experts=2,
                expert_units=[8],
            ),
        }[kind]()
        built = MultiTaskRanker(encoded_features(), backbone, tasks, **common)
    built.compile(optimizer="adam")
    return built


def batches(data: dict, batch_size: int = 64) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size)


@pytest.mark.parametrize("kind", ["mmoe", "ple", "esmm"])
def test_compiled_predictions_equal_the_uncompiled_model(kind):
    data = rows()
    plain, compiled = model(kind, False), model(kind, True)
    plain.fit(batches(data), epochs=1, verbose=0)
    compiled(next(iter(batches(data))))  # builds the weights
    compiled.set_weights(plain.get_weights())
    # NaN in the filled feature is read as missing by both.
    data["price"][7] = np.nan
    expected = plain.predict(batches(data), verbose=0)
    got = compiled.predict(batches(data), verbose=0)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].shape == expected[name].shape == (ROWS, 1)
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)
    # A second pass reuses the compiled function (and the last, short batch's).
    again = compiled.predict(batches(data), verbose=0)
    np.testing.assert_array_equal(again[name], got[name])


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        (
            "shop",
            70,
            7,
            "Encoded id out of range: feature `shop`: ids must be in [0, 7) "
            "(`num_ids=7`); received] [7] [at batch row] [6]",
        ),
        (
            "city",
            3,
            -1,
            "Encoded id out of range: feature `city`: ids must be in [0, 5) "
            "(`num_ids=5`); received] [-1] [at batch row] [3]",
        ),
        (
            "hour",
            5,
            np.inf,
            "Input `hour` is NaN or infinite at row 5 of the batch (value inf)",
        ),
        (
            "age",
            2,
            np.nan,
            "Input `age` is NaN or infinite at row 2 of the batch (value nan)",
        ),
        (
            "price",
            9,
            -np.inf,
            "Input `price` is NaN or infinite at row 9 of the batch (value -inf)",
        ),
    ],
    ids=["id_too_large", "negative_id", "inf", "nan", "inf_in_filled"],
)
def test_bad_inputs_are_refused_as_without_xla(column, row, value, message):
    data = rows()
    data[column] = data[column].astype(
        np.float32 if value != 7 and value != -1 else np.int64
    )
    data[column][row] = value
    for compiled in (False, True):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            model("ple", compiled).predict(batches(data), verbose=0)
        assert message in str(info.value)


def test_a_missing_feature_is_named_as_without_xla():
    data = rows()
    del data["os"]
    for compiled in (False, True):
        # Keras' traced predict wraps the layer's KeyError (a RuntimeError
        # uncompiled, AutoGraph's StagingError around the XLA function).
        with pytest.raises(Exception) as info:  # noqa: PT011 (message below)
            model("ple", compiled).predict(batches(data), verbose=0)
        assert "Missing input feature 'os'; the model expects" in str(info.value)


def test_argument_is_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match="`predict_jit_compile` must be a bool"):
        MultiTaskRanker(
            encoded_features(),
            SharedBottom(["click"], units=[4]),
            [Task("click", "click")],
            predict_jit_compile="yes",
        )
    # A NumPy bool is one, kept as Python's (the config stays JSON).
    ranker = MultiTaskRanker(
        encoded_features(),
        SharedBottom(["click"], units=[4]),
        [Task("click", "click")],
        predict_jit_compile=np.bool_(True),
    )
    assert ranker.get_config()["predict_jit_compile"] is True
    with pytest.raises(ValueError, match="needs a feature layer XLA can compile"):
        MultiTaskRanker(
            city_price_features(),  # a vocabulary lookup
            SharedBottom(["click"], units=[4]),
            [Task("click", "click")],
            predict_jit_compile=True,
        )
    built = model("mmoe", True)
    config = built.get_config()
    assert config["predict_jit_compile"] is True
    assert MultiTaskRanker.from_config(config).predict_jit_compile is True
    assert model("esmm", True).get_config()["predict_jit_compile"] is True
    assert model("mmoe", False).predict_jit_compile is False


def test_a_model_that_predicted_through_xla_exports_and_serves_the_same(tmp_path):
    from mtrec.export import export_saved_model

    data = rows(64)
    compiled = model("ple", True)
    predicted = compiled.predict(batches(data), verbose=0)  # the XLA path ran
    features = {k: v for k, v in data.items() if k not in ("click", "buy")}
    warmup = {k: v[:4].tolist() for k, v in features.items()}
    path = export_saved_model(
        compiled,
        compiled.feature_layer.feature_set,
        tmp_path / "exports",
        warmup_rows=warmup,
    )
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = serving(**{k: tf.constant(v) for k, v in features.items()})
    for name, value in predicted.items():
        np.testing.assert_allclose(served[name].numpy(), value[:, 0], atol=1e-5)


def test_a_model_made_under_a_strategy_predicts_uncompiled_in_predict_and_predictor():
    data = rows(100)
    alone = model("ple", True)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        distributed = model("ple", True)
    # One rule for predict_step and Predictor, about the model and the context.
    assert compiles_prediction(alone) and Predictor(alone).compiled
    assert not compiles_prediction(distributed)
    assert not Predictor(distributed).compiled
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert not compiles_prediction(alone)
    distributed(next(iter(batches(data))))
    alone(next(iter(batches(data))))
    distributed.set_weights(alone.get_weights())
    expected = alone.predict(batches(data), verbose=0)  # through XLA
    got = distributed.predict(batches(data), verbose=0)
    scored = Predictor(distributed)({k: tf.constant(v) for k, v in data.items()})
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scored[name], value[:, 0], rtol=1e-5, atol=1e-6)


def test_padded_batch_size_is_the_next_power_of_two():
    sizes = list(range(0, 2100)) + [2**29 - 1, 2**29, 2**29 + 1]
    got = padded_batch_size(tf.constant(sizes, tf.int32)).numpy().tolist()
    expected = [1 if n <= 1 else 2 ** (n - 1).bit_length() for n in sizes]
    assert got == expected
    assert got[1024] == 1024 and got[1025] == 2048 and sizes[-1] == 2**29 + 1
    assert got[-3:] == [2**29, 2**29, 2**30]


def test_pad_batch_appends_zero_rows_of_each_dtype_and_rank():
    x = {
        "id": tf.constant([4, 2, 9], tf.int64),
        "price": tf.constant([1.5, np.nan, -2.0], tf.float32),
        "history": tf.constant([[1, 2], [3, 4], [5, 6]], tf.int32),
    }
    rows, padded = pad_batch(x)
    assert int(rows) == 3
    assert {k: (v.dtype, tuple(v.shape)) for k, v in padded.items()} == {
        "id": (tf.int64, (4,)),
        "price": (tf.float32, (4,)),
        "history": (tf.int32, (4, 2)),
    }
    assert padded["id"].numpy().tolist() == [4, 2, 9, 0]
    np.testing.assert_array_equal(padded["price"], [1.5, np.nan, -2.0, 0.0])
    assert padded["history"].numpy().tolist() == [[1, 2], [3, 4], [5, 6], [0, 0]]
    full_rows, full = pad_batch({"id": tf.range(8)})
    assert int(full_rows) == 8 and full["id"].numpy().tolist() == list(range(8))


_COMPILATIONS = """
import sys
sys.path[:0] = [{tests!r}, {models!r}]
import numpy as np
from test_compiled_predict import batches, model, rows

data = rows(300)
compiled, plain = model("ple", True), model("ple", False)
compiled(next(iter(batches(data))))
plain(next(iter(batches(data))))
plain.set_weights(compiled.get_weights())
# 64-row batches and a 44-row last one, twice; 3 rows; 100 rows in one batch.
for data_, size in ((data, 64), (data, 64), (rows(3), 64), (rows(100), 100)):
    got = compiled.predict(batches(data_, size), verbose=0)
    expected = plain.predict(batches(data_, size), verbose=0)
    for name in expected:
        assert got[name].shape == expected[name].shape == (len(data_["city"]), 1)
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)
"""


def _compiled_batch_sizes(dump: Path) -> list[int]:
    """The leading dimension of the first parameter of each module XLA
    compiled (one ``*.before_optimizations.txt`` per compilation)."""
    sizes = []
    for module in sorted(dump.glob("*.before_optimizations.txt")):
        entry = module.read_text().split("ENTRY", 1)[1]
        parameter = next(line for line in entry.splitlines() if "parameter(0)" in line)
        shape = parameter.split("[", 1)[1].split("]", 1)[0]
        sizes.append(int(shape.split(",")[0]))
    return sizes


def test_xla_compiles_once_per_power_of_two_of_the_batch_size(tmp_path):
    here = Path(__file__).resolve().parent
    script = tmp_path / "predict.py"
    script.write_text(
        textwrap.dedent(_COMPILATIONS).format(tests=str(here.parent), models=str(here))
    )
    dump = tmp_path / "xla"
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_dump_to={dump}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Unpadded, XLA would compile 64, 44, 3 and 100 rows.
    assert sorted(_compiled_batch_sizes(dump)) == [4, 64, 128]


def test_the_compiled_forward_is_traced_without_autograph_unless_needed():
    data = {k: tf.constant(v) for k, v in rows(10).items()}
    plain, compiled = model("mmoe", False), model("mmoe", True)
    plain(data), compiled(data)  # build the weights
    compiled.set_weights(plain.get_weights())
    forward = CompiledForward(compiled)
    got = forward(data)
    assert forward.compiled.autograph is False
    assert forward.compiled.tracing_count == 1
    for name, value in plain(data).items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6)
    forward(data)
    assert forward.compiled.tracing_count == 1


class _Branching(tf.keras.layers.Layer):
    """A user's backbone with Python control flow on a tensor: only
    AutoGraph can trace it."""

    def __init__(self, task_names, **kwargs):
        super().__init__(**kwargs)
        self.task_names = list(task_names)
        self.dense = tf.keras.layers.Dense(4)

    def call(self, x, training=None):
        h = self.dense(x)
        if tf.reduce_sum(h) > 1e9:
            h = -h
        return {task: h for task in self.task_names}


def test_a_backbone_that_needs_autograph_still_compiles():
    data = rows(50)
    built = MultiTaskRanker(
        encoded_features(),
        _Branching(["click"]),
        [Task("click", "click")],
        tower_units=[4],
        predict_jit_compile=True,
    )
    built.compile(optimizer="adam")
    forward = CompiledForward(built)
    batch = {k: tf.constant(v) for k, v in data.items()}
    got = forward(batch)
    assert forward.compiled.autograph is True
    np.testing.assert_allclose(
        got["click"], built(batch, training=False)["click"], rtol=1e-5, atol=1e-6
    )
