"""Tests of the argument checks shared by the layers (``mtrec.layers.validation``)."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import validation  # isort: split

import re

import numpy as np
import pytest
import tensorflow as tf


def _raises(message: str):
    return pytest.raises(ValueError, match=re.escape(message))


@pytest.mark.parametrize("units", [(64, 32), [8], [np.int64(4)]])
def test_units_accepts_sequences_of_positive_ints(units):
    out = validation.check_units("units", units, allow_empty=False)
    assert out == [int(u) for u in units]
    assert all(type(u) is int for u in out)


@pytest.mark.parametrize(
    "units, message",
    [
        (2.7, "`units` must be a sequence of ints. Received: `units=2.7`"),
        ("64", "`units` must be a sequence of ints. Received: `units='64'`"),
        (b"64", "`units` must be a sequence of ints. Received: `units=b'64'`"),
        ({64}, "`units` must be a sequence of ints. Received: `units={64}`"),
        ([2.0], "`units` must be a sequence of ints. Received: `units=[2.0]`"),
        ([True], "`units` must be a sequence of ints. Received: `units=[True]`"),
        ([0], "`units` must all be >= 1. Received: `units=[0]`"),
        ([], "`units` must not be empty. Received: `units=[]`"),
    ],
)
def test_units_refuses(units, message):
    with _raises(message):
        validation.check_units("units", units, allow_empty=False)


def test_units_may_be_empty_where_allowed():
    assert validation.check_units("gate_units", (), allow_empty=True) == []


def test_ints():
    assert validation.check_positive_int("num_experts", np.int32(3)) == 3
    assert validation.check_int("seed", -4) == -4
    with _raises("`num_experts` must be >= 1. Received: `num_experts=0`"):
        validation.check_positive_int("num_experts", 0)
    with _raises("`num_experts` must be >= 1. Received: `num_experts=True`"):
        validation.check_positive_int("num_experts", True)
    with _raises("`seed` must be an int. Received: `seed=1.5`"):
        validation.check_int("seed", 1.5)
    with _raises("`n` must be >= 2. Received: `n=1`"):
        validation.check_int("n", 1, minimum=2)


@pytest.mark.parametrize(
    "check, good, bad, message",
    [
        ("check_rate", [0, 0.5], 1.0, "`x` must be in [0, 1). Received: `x=1.0`"),
        ("check_probability", [0.0, 1], 1.5, "`x` must be in [0, 1]. Received:"),
        ("check_fraction", [1.0, 0.1], 0.0, "`x` must be in (0, 1]. Received: `x=0.0`"),
        ("check_non_negative", [0, 3.5], -1.0, "`x` must be >= 0. Received: `x=-1.0`"),
        ("check_positive", [1e-9, 2], 0, "`x` must be > 0. Received: `x=0`"),
    ],
)
def test_numbers(check, good, bad, message):
    check = getattr(validation, check)
    for value in good:
        assert check("x", value) == float(value)
        assert type(check("x", value)) is float
    with _raises(message):
        check("x", bad)
    for not_a_number in ["0.5", True, None, float("nan")]:
        with _raises("`x` must be a number. Received: `x="):
            check("x", not_a_number)


def test_number_with_upper_bound_only():
    assert validation.check_number("x", -3, maximum=2, max_open=True) == -3.0
    with _raises("`x` must be < 2. Received: `x=2`"):
        validation.check_number("x", 2, maximum=2, max_open=True)


def test_choice_and_bool():
    assert validation.check_choice("mode", "a", ("a", "b")) == "a"
    with _raises("`mode` must be one of ('a', 'b'). Received: `mode='c'`"):
        validation.check_choice("mode", "c", ("a", "b"))
    with _raises("`mode` must be one of ('a', 'b'). Received: `mode=['a']`"):
        validation.check_choice("mode", ["a"], ("a", "b"))
    assert validation.check_bool("flag", np.bool_(True)) is True
    with _raises("`flag` must be a bool. Received: `flag='false'`"):
        validation.check_bool("flag", "false")


def test_activation_and_initializer_are_resolved():
    tanh = validation.check_activation("activation", "tanh")
    assert tanh is tf.keras.activations.tanh
    assert validation.check_activation("activation", None)(2.0) == 2.0
    initializer = validation.check_initializer(
        "kernel_initializer", {"class_name": "Constant", "config": {"value": 2.0}}
    )
    assert isinstance(initializer, tf.keras.initializers.Constant)
    with _raises("`activation` must be an activation name, config or callable. "):
        validation.check_activation("activation", "no_such_activation")
    with _raises("Received: `kernel_initializer='nope'`"):
        validation.check_initializer("kernel_initializer", "nope")


def test_task_keys():
    assert validation.check_task_keys("weights", None, ["a"]) == {}
    assert validation.check_task_keys("weights", {"a": 2}, ["a", "b"]) == {"a": 2}
    with _raises("`weights` names unknown tasks ['c']; tasks are ['a', 'b']."):
        validation.check_task_keys("weights", {"c": 1}, ["a", "b"])
