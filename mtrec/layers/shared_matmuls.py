"""Mixture layers' matmuls: shared between sublayers, or one each.

:func:`apply_layers` runs the expert groups and linear gates that read the
same input (of at least :data:`MIN_SHARED_INPUT` columns) as one matmul, its
columns padded to a multiple of :data:`COLUMN_MULTIPLE`;
:func:`separate_matmuls` turns that (and the stacked gate mixes of
:mod:`mtrec.layers.expert_mix`) off while a graph is traced.
"""

import contextlib
import threading
from collections.abc import Iterator
from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import experts as experts_lib
from mtrec.layers import validation

_MODE = threading.local()
_UNSET = object()

#: Layers reading an input of fewer columns than this keep a matmul each
#: (:func:`apply_layers`; :func:`matmul_layout` sets another while a graph
#: is traced).
MIN_SHARED_INPUT = 64

#: The shared matmul's columns are padded with zeros to a multiple of this
#: (:func:`apply_layers`; :func:`matmul_layout` sets another).
COLUMN_MULTIPLE = 16


def matmuls_separate() -> bool:
    """Whether this thread is tracing inside :func:`separate_matmuls`."""
    return getattr(_MODE, "separate", False)


@contextlib.contextmanager
def matmul_layout(
    min_shared_input: int | None = None, column_multiple: int | None = None
) -> Iterator[None]:
    """Within it, :func:`apply_layers` shares a matmul between layers reading
    an input of at least ``min_shared_input`` columns and pads it to a
    multiple of ``column_multiple`` columns (``None``: the defaults,
    :data:`MIN_SHARED_INPUT` and :data:`COLUMN_MULTIPLE`). Read when a graph
    is traced (per thread), as :func:`separate_matmuls`; the values are the
    same either way, only the matmuls differ (benchmarks compare them).

    Raises:
      ValueError: a value that is not ``None`` or an int >= 1.

    Example:

    >>> layer = mtrec.MMoE(["a", "b"], num_experts=2, expert_units=[4])
    >>> x = tf.ones((3, 5))
    >>> with matmul_layout(min_shared_input=1, column_multiple=1):
    ...     shared = layer(x)  # 5 input columns: one matmul, 14 columns
    >>> own = layer(x)  # fewer than 64 input columns: a matmul each
    >>> bool(tf.reduce_all(tf.abs(shared["a"] - own["a"]) < 1e-5))
    True
    """
    settings = {
        "min_shared_input": min_shared_input,
        "column_multiple": column_multiple,
    }
    for name, value in settings.items():
        if value is not None:
            validation.check_count(name, value, 1)
    with _overriding(
        {name: int(value) for name, value in settings.items() if value is not None}
    ):
        yield


@contextlib.contextmanager
def _overriding(settings: dict) -> Iterator[None]:
    """This thread's ``_MODE`` attributes set to ``settings`` within it, and
    restored after (an attribute unset before is unset again)."""
    previous = {name: getattr(_MODE, name, _UNSET) for name in settings}
    for name, value in settings.items():
        setattr(_MODE, name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is _UNSET:
                delattr(_MODE, name)
            else:
                setattr(_MODE, name, value)


def _setting(name: str, default: int) -> int:
    """This thread's :func:`matmul_layout` value of ``name``, else ``default``."""
    value = getattr(_MODE, name, None)
    return default if value is None else value


@contextlib.contextmanager
def separate_matmuls() -> Iterator[None]:
    """Within it, mixture layers give every expert group and gate its own matmul.

    By default the expert groups and linear gates of a mixture layer that
    read the same input share one matmul (:func:`apply_layers`), and MMoE
    mixes all tasks' gates in one (``expert_mix.mix_experts_per_gate``): the same
    values, fewer and larger matmuls. The shared matmul connects every one
    of those variables to every task's loss, with an exactly zero gradient
    where a task does not use it. Code that tells task-specific variables
    from shared ones by which task losses reach them (the gradient
    weightings' ``MultiTaskRanker.shared_layout``) traces the model inside
    this context, where that reach is the model's own.

    The switch is read when a graph is traced (per thread), not when it runs.

    Example:

    >>> layer = mtrec.MMoE(["a", "b"], num_experts=2, expert_units=[4])
    >>> x = tf.ones((3, 5))
    >>> with separate_matmuls():
    ...     separate = layer(x)
    >>> fused = layer(x)
    >>> bool(tf.reduce_all(tf.abs(separate["a"] - fused["a"]) < 1e-5))
    True
    """
    with _overriding({"separate": True}):
        yield


def apply_layers(
    calls: Sequence[tuple[tf.Tensor, tf.keras.layers.Layer]],
    training=None,
    joined: int = 0,
) -> list[tf.Tensor]:
    """``[layer(x) for x, layer in calls]``, sharing matmuls between layers.

    The layers with a ``first_linear`` ``(kernel, bias)`` (:class:`Experts`,
    linear :class:`Gate` s) that read the same tensor ``x`` compute
    ``x [K_1 .. K_m] + [b_1 .. b_m]`` as one matmul, split by columns, and
    each continues with its ``from_first_linear``: the same values as
    separate calls, one larger matmul (and one in the backward pass for
    ``dx`` and one for the kernels) instead of ``m`` thin ones. Others, and
    every layer inside :func:`separate_matmuls`, are called as usual; so is
    a layer not built yet (its first call builds it, in its name scope).

    Layers reading an input of fewer than :data:`MIN_SHARED_INPUT` (64)
    columns keep a matmul each: there the split of the shared result and
    the experts' activation apart from their matmul cost more than reading
    the input once per layer. A PLE task's second-level layers (2 experts of
    32 units and a gate of 4), one core, a matmul each against one shared:
    on 32 inputs 1.27x faster forward and 1.15x forward and backward, on 64
    1.25x and 1.07x, on 255 1.04x forward but 0.90x with the backward pass
    (``benchmarks/results/step_copies_width.json``, ``shared_matmul``, 7
    interleaved rounds, median). Census PLE's second
    level reads 32 inputs; with the padding below, its share of the matmul
    floor in the DeepCTR comparison rose from 0.45 (training) and 0.39
    (prediction) to 0.51 and 0.44
    (``benchmarks/results/deepctr_comparison_narrow_xeon.json``).

    The shared matmul gets zero columns up to a multiple of
    :data:`COLUMN_MULTIPLE` (16 float32 values, one AVX-512 register), which
    the split after it drops: oneDNN runs a last block of fewer columns
    slower. Census PLE's layer (206 columns in its first level, 208 padded)
    ran 1.03x faster forward and 1.04x forward and backward on one core
    (``benchmarks/results/step_copies_width.json``, ``ple_padded_matmul``,
    median of 7 interleaved rounds; 1.04x and 1.02x in
    ``step_copies_padded.json``).

    Args:
      calls: ``(inputs, layer)`` pairs; inputs ``(batch, input_dim)``.
      training: passed to every layer.
      joined: the first ``joined`` calls are :class:`Experts` groups whose
        outputs are wanted concatenated along the experts' axis (a mixture
        mixing them together), returned as one ``(batch, sum n_j, u)``
        tensor in their place. Where they share one matmul with the same
        ``join_key`` their columns are activated and reshaped once
        (``experts.joined_from_first_linear``): no split into groups and
        concat of their outputs. In census PLE's first level this made a
        training step about 3% faster (one core). Default ``0``.

    Returns:
      Each layer's output, in the order of ``calls``; with ``joined > 1``
      the first ``joined`` outputs as one.
    """
    if joined > 1 and _joinable(calls[:joined]):
        return _apply_joined(calls, training, joined)
    outputs = _apply(calls, training)
    if joined > 1:
        return [tf.concat(outputs[:joined], axis=1), *outputs[joined:]]
    return outputs


def _apply(calls, training) -> list[tf.Tensor]:
    """:func:`apply_layers` without ``joined``."""
    outputs: list = [None] * len(calls)
    groups: dict[int, list[int]] = {}
    for i, (x, layer) in enumerate(calls):
        if not layer.built or getattr(layer, "first_linear", None) is None:
            outputs[i] = layer(x, training=training)
        else:
            groups.setdefault(id(x), []).append(i)
    separate = matmuls_separate()
    for members in groups.values():
        if separate or len(members) == 1 or not _wide(calls[members[0]][0]):
            for i in members:
                outputs[i] = calls[i][1](calls[i][0], training=training)
            continue
        pre, widths = _first_linears(
            calls[members[0]][0], [calls[i][1] for i in members]
        )
        parts = _split_columns(pre, widths)
        for i, part in zip(members, parts, strict=True):
            outputs[i] = calls[i][1].from_first_linear(part, training=training)
    return outputs


def _wide(x) -> bool:
    """Whether layers reading ``x`` share a matmul: ``x`` has at least
    :data:`MIN_SHARED_INPUT` columns (or :func:`matmul_layout`'s; or an
    unknown number)."""
    width = x.shape[-1]
    return width is None or int(width) >= _setting("min_shared_input", MIN_SHARED_INPUT)


def _first_linears(x, layers) -> tuple[tf.Tensor, list[int]]:
    """``x [K_1 .. K_m 0] + [b_1 .. b_m 0]`` of ``layers``' ``first_linear`` s,
    ``(batch, sum w_j + p)``, and the widths ``w_j``: ``p`` zero columns pad
    the matmul to a multiple of :data:`COLUMN_MULTIPLE` columns (see
    :func:`padding_columns`); :func:`_split_columns` drops them."""
    linears = [layer.first_linear for layer in layers]
    widths = [int(kernel.shape[-1]) for kernel, _ in linears]
    kernels = [kernel for kernel, _ in linears]
    biases = [
        bias if bias is not None else tf.zeros((width,), x.dtype)
        for (_, bias), width in zip(linears, widths, strict=True)
    ]
    pad = padding_columns(sum(widths))
    if pad:
        kernels.append(tf.zeros((int(kernels[0].shape[0]), pad), x.dtype))
        biases.append(tf.zeros((pad,), x.dtype))
    pre = tf.matmul(x, tf.concat(kernels, axis=1))
    return pre + tf.concat(biases, axis=0), widths


def padding_columns(width: int) -> int:
    """Zero columns that pad a shared matmul of ``width`` columns to a
    multiple of :data:`COLUMN_MULTIPLE` (or :func:`matmul_layout`'s).

    Example:

    >>> [padding_columns(w) for w in (14, 16, 206)]
    [2, 0, 2]
    """
    return -width % _setting("column_multiple", COLUMN_MULTIPLE)


def _split_columns(pre, widths) -> list[tf.Tensor]:
    """``pre`` cut into columns of ``widths``, its padding dropped."""
    pad = padding_columns(sum(widths))
    if not pad and len(widths) == 1:
        return [pre]
    parts = tf.split(pre, [*widths, pad] if pad else widths, axis=1)
    return parts[: len(widths)]


def _joinable(calls) -> bool:
    """Whether the groups of ``calls`` read one tensor, are built and share
    a ``join_key``, outside :func:`separate_matmuls`."""
    if matmuls_separate():
        return False
    x = calls[0][0]
    layers = [layer for _, layer in calls]
    keys = {getattr(layer, "join_key", None) for layer in layers}
    return (
        _wide(x)
        and all(inputs is x for inputs, _ in calls)
        and all(layer.built for layer in layers)
        and len(keys) == 1
        and None not in keys
    )


def _apply_joined(calls, training, joined: int) -> list[tf.Tensor]:
    """:func:`apply_layers` with the :func:`_joinable` groups
    ``calls[:joined]``; the other layers reading their tensor share the
    matmul."""
    x = calls[0][0]
    sharing = [
        i
        for i, (inputs, layer) in enumerate(calls)
        if i < joined
        or (
            inputs is x
            and layer.built
            and getattr(layer, "first_linear", None) is not None
        )
    ]
    outputs: list = [None] * len(calls)
    rest = [i for i in range(len(calls)) if i not in sharing]
    for i, output in zip(rest, _apply([calls[i] for i in rest], training), strict=True):
        outputs[i] = output
    pre, widths = _first_linears(x, [calls[i][1] for i in sharing])
    parts = _split_columns(pre, [sum(widths[:joined]), *widths[joined:]])
    groups = [layer for _, layer in calls[:joined]]
    outputs[0] = experts_lib.joined_from_first_linear(groups, parts[0])
    for i, part in zip(sharing[joined:], parts[1:], strict=True):
        outputs[i] = calls[i][1].from_first_linear(part, training=training)
    return [outputs[0], *outputs[joined:]]
