"""``mtrec.models.plain_trace``: functions traced as plain Python first."""

import tensorflow as tf

from mtrec.models.plain_trace import BatchFunction
from mtrec.models.plain_trace import plain_first_function


def test_a_batch_function_is_traced_once_for_any_batch_size():
    total = BatchFunction(lambda b: tf.reduce_sum(b["x"], axis=1), "test")
    sums = [total({"x": tf.ones([n, 3])}).numpy().tolist() for n in (4, 2, 4)]
    assert sums == [[3.0] * 4, [3.0] * 2, [3.0] * 4]
    assert total.tracing_count == 1
    # Ragged columns go to the tf.function as they are.
    lengths = BatchFunction(lambda b: b["x"].row_lengths(), "test")
    assert lengths({"x": tf.ragged.constant([[1], [2, 3]])}).numpy().tolist() == [1, 2]


def test_a_signature_is_traced_once_plain_or_with_autograph(caplog):
    def branching(x):
        if tf.reduce_sum(x) > 0:  # a tensor as a Python bool: AutoGraph's
            return x
        return -x

    spec = [tf.TensorSpec([None], tf.float32)]
    with caplog.at_level("INFO", logger="mtrec.models.plain_trace"):
        plain = plain_first_function(tf.abs, spec, "plain")
        assert not caplog.records
        converted = plain_first_function(branching, spec, "branching")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "The branching function needs AutoGraph"
    ]
    for function in (plain, converted):
        assert function(tf.constant([-2.0])).numpy().tolist() == [2.0]
        assert function.experimental_get_tracing_count() == 1
