"""TF Serving's ``BatchingParameters`` and a strict reader of its text format."""

import dataclasses
import logging
import os
import pathlib
import re

logger = logging.getLogger(__name__)

#: The defaults of TensorFlow's SharedBatchScheduler queue, which TF Serving
#: uses for a field the file leaves out (``GetQueueOptions`` in
#: tensorflow_serving/servables/tensorflow/bundle_factory_util.h).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_MAX_ENQUEUED_BATCHES = 10

# Wrapper-typed fields (``google.protobuf.Int64Value`` etc.) are written
# ``name { value: N }``; the two plain fields ``name: N``.
_INT_WRAPPERS = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "max_execution_batch_size",
)
_BOOL_WRAPPERS = ("enable_large_batch_splitting",)
_STRING_WRAPPERS = ("thread_pool_name",)
_WRAPPED = re.compile(r"(?P<name>\w+)\s*\{\s*value\s*:\s*(?P<value>[^}]*?)\s*\}")
_PLAIN = re.compile(r"(?P<name>\w+)\s*:\s*(?P<value>\S+)")


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """How ``mtrec serve --enable_batching`` merges concurrent requests.

    The fields and defaults of TF Serving's ``BatchingParameters``
    (tensorflow_serving/servables/tensorflow/session_bundle_config.proto),
    so one ``batching_parameters.txt`` configures both servers.

    Attributes:
      max_batch_size: largest merged batch, in rows; a request larger than
        this is refused (``Task size N is larger than maximum input batch
        size M``) unless ``enable_large_batch_splitting``. Default 1000.
      batch_timeout_micros: how long the first request of a batch waits for
        others; 0 runs a batch as soon as a thread is free, merging the
        requests that queued meanwhile. Default 0.
      max_enqueued_batches: batches that may wait per queue (model version,
        signature and input shapes); a request that would need one more is
        refused at once with UNAVAILABLE (HTTP 503). Default 10.
      num_batch_threads: batches run concurrently. Default: the CPU count.
      thread_pool_name: accepted for compatibility; unused.
      enable_large_batch_splitting: split a request larger than the room
        left in a batch across batches (its rows come back in order).
        Default False.
      max_execution_batch_size: with splitting, the largest batch run;
        default ``max_batch_size``.
      allowed_batch_sizes: batch sizes to pad a merged batch up to (by
        repeating its first row; the padding's outputs are dropped),
        increasing, the last equal to ``max_batch_size``. Default: no padding.
      pad_variable_length_inputs: accepted; mtrec never pads along other
        dimensions, it merges only requests whose inputs have the same shapes
        after the first dimension (others run in their own batches).
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES
    num_batch_threads: int = dataclasses.field(
        default_factory=lambda: os.cpu_count() or 1
    )
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be an int >= 1. Received: `{name}={value!r}`"
                )
        if self.batch_timeout_micros < 0:
            raise ValueError(
                "`batch_timeout_micros` must be >= 0. Received: "
                f"`batch_timeout_micros={self.batch_timeout_micros}`"
            )
        if self.max_execution_batch_size is not None and not (
            1 <= self.max_execution_batch_size <= self.max_batch_size
        ):
            raise ValueError(
                "`max_execution_batch_size` must be in [1, max_batch_size="
                f"{self.max_batch_size}]. Received: "
                f"`max_execution_batch_size={self.max_execution_batch_size}`"
            )
        sizes = tuple(self.allowed_batch_sizes)
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
                raise ValueError(
                    "`allowed_batch_sizes` must be positive and increasing. "
                    f"Received: `allowed_batch_sizes={list(sizes)}`"
                )
            # TF Serving's check (WrapSessionForBatching, bundle_factory_util.cc)
            if sizes[-1] != self.execution_batch_size:
                raise ValueError(
                    "The last of `allowed_batch_sizes` must equal max_batch_size "
                    f"({self.execution_batch_size}). Received: "
                    f"`allowed_batch_sizes={list(sizes)}`"
                )

    @property
    def execution_batch_size(self) -> int:
        """The largest batch run in one call."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size


def read_batching_parameters(path: str | os.PathLike) -> BatchingParameters:
    """Reads a ``BatchingParameters`` text proto (TF Serving's
    ``--batching_parameters_file``).

    A strict reader for the message's nine fields (the proto is not in
    ``tensorflow-serving-api``): one field per line, ``#`` comments, wrapper
    fields as ``max_batch_size { value: 1024 }``, ``allowed_batch_sizes: 128``
    repeated. Anything else is an error naming the file and line.

    Raises:
      ValueError: an unknown or repeated field, a bad value or a line that
        is not a field, with ``path:line``; or values out of range.
      OSError: the file cannot be read.

    Example:

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
    ...     _ = f.write("max_batch_size { value: 64 }\\nnum_batch_threads { value: 2 }")
    ...     f.flush()
    ...     read_batching_parameters(f.name).max_batch_size
    64
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"batching parameters file not found: {path}")
    fields: dict[str, object] = {}
    allowed: list[int] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            _read_field(text, f"{path}:{number}", fields, allowed)
    try:
        return BatchingParameters(**fields, allowed_batch_sizes=tuple(allowed))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _read_field(
    text: str, where: str, fields: dict[str, object], allowed: list[int]
) -> None:
    """Reads one field line ``text`` (``where``: ``path:line``) into
    ``fields``, or into ``allowed`` for ``allowed_batch_sizes``; raises
    ``ValueError`` naming ``where`` otherwise (see
    :func:`read_batching_parameters`)."""
    wrapped = _WRAPPED.fullmatch(text)
    match = wrapped or _PLAIN.fullmatch(text)
    if not match:
        raise ValueError(
            f"{where}: expected `field {{ value: V }}` or `field: V`. "
            f"Received: `{text}`"
        )
    name, value = match.group("name", "value")
    if name == "allowed_batch_sizes" and not wrapped:
        allowed.append(_int(value, name, where))
        return
    if name == "pad_variable_length_inputs" and not wrapped:
        fields[name] = _bool(value, name, where)
        return
    known = _INT_WRAPPERS + _BOOL_WRAPPERS + _STRING_WRAPPERS
    if name not in known:
        valid = ", ".join(
            sorted(known + ("allowed_batch_sizes", "pad_variable_length_inputs"))
        )
        raise ValueError(
            f"{where}: unknown BatchingParameters field `{name}` (or wrong "
            f"form for it). Valid fields: {valid}"
        )
    if not wrapped:
        raise ValueError(
            f"{where}: `{name}` is a wrapper field: write `{name} {{ value: {value} }}`"
        )
    if name in fields:
        raise ValueError(f"{where}: `{name}` is given twice")
    if name in _INT_WRAPPERS:
        fields[name] = _int(value, name, where)
    elif name in _BOOL_WRAPPERS:
        fields[name] = _bool(value, name, where)
    else:
        fields[name] = _string(value, name, where)


def _int(value: str, name: str, where: str) -> int:
    if not re.fullmatch(r"-?\d+", value):
        raise ValueError(
            f"{where}: `{name}` must be an integer. Received: `{name}={value}`"
        )
    return int(value)


def _bool(value: str, name: str, where: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "t", "1"):
        return True
    if lowered in ("false", "f", "0"):
        return False
    raise ValueError(
        f"{where}: `{name}` must be true or false. Received: `{name}={value}`"
    )


def _string(value: str, name: str, where: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    raise ValueError(
        f"{where}: `{name}` must be a quoted string. Received: `{name}={value}`"
    )
