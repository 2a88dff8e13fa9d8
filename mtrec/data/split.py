"""The deterministic, hash-based train/eval split of click-log rows."""

import dataclasses
import math

import numpy as np

_MASK64 = (1 << 64) - 1
_GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclasses.dataclass(frozen=True)
class Split:
    """Deterministic train/eval split of rows by a hash of (seed, file index, row).

    A row goes to ``"eval"`` iff ``h(seed, file_index, row_index) / 2**64 <
    eval_fraction``, where ``h`` is a splitmix64 hash computed with numpy uint64
    arithmetic, ``file_index`` is the file's position in the expanded, sorted
    path list and ``row_index`` the 0-based data row in the file (for CSV,
    ``line - 2``). A row's part therefore depends on nothing but its position:
    not on ``chunk_rows``, not on other rows, not on file shuffling. The two parts
    are disjoint and together cover every row.

    The split is applied after validation (a bad row is an error in either part)
    and before ``label_requires`` drops, so ``ReadStats.rows_dropped`` counts the
    violations inside the selected part only.

    With ``validation_fraction`` ``v > 0`` the held-out rows are cut once more:
    a row with ``h / 2**64 < v`` goes to ``"validation"`` (for model selection)
    instead of ``"eval"``, so ``"train"`` keeps exactly the rows it has with
    ``v = 0`` and the three parts are disjoint and cover every row.

    Attributes:
      part: ``"train"``, ``"eval"`` or ``"validation"``: which part to keep.
      eval_fraction: expected fraction of rows held out (``"eval"`` and
        ``"validation"`` together), in ``(0, 1)``.
      seed: hash seed; the same seed gives the same split on every machine.
      validation_fraction: expected fraction of rows in ``"validation"``, in
        ``[0, eval_fraction]``. Default 0: no validation part.

    Example:

    >>> train = Split("train", eval_fraction=0.1, seed=7)
    >>> evaluation = Split("eval", eval_fraction=0.1, seed=7)
    """

    part: str
    eval_fraction: float
    seed: int
    validation_fraction: float = 0.0

    def __post_init__(self):
        if self.part not in PARTS:
            raise ValueError(
                f"`part` must be one of {list(PARTS)}. Received: `part={self.part!r}`"
            )
        if isinstance(self.eval_fraction, bool) or not (
            isinstance(self.eval_fraction, int | float) and 0 < self.eval_fraction < 1
        ):
            raise ValueError(
                "`eval_fraction` must be a number in (0, 1). "
                f"Received: `eval_fraction={self.eval_fraction!r}`"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"`seed` must be an int. Received: `seed={self.seed!r}`")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not (
            isinstance(fraction, int | float) and 0 <= fraction <= self.eval_fraction
        ):
            raise ValueError(
                "`validation_fraction` must be a number in [0, eval_fraction="
                f"{self.eval_fraction}]. Received: `validation_fraction={fraction!r}`"
            )

    def mask(self, file_index: int, row_indices: np.ndarray) -> np.ndarray:
        """Which rows belong to this part.

        Args:
          file_index: the file's position in the expanded path list.
          row_indices: 0-based data row indices within the file.

        Returns:
          A bool array, True for the rows in ``self.part``.
        """
        hashed = _split_hash(self.seed, file_index, row_indices)
        held_out = hashed < _threshold(self.eval_fraction)
        if self.part == "train":
            return ~held_out
        validation = (
            hashed < _threshold(self.validation_fraction)
            if self.validation_fraction
            else np.zeros_like(held_out)
        )
        return validation if self.part == "validation" else held_out & ~validation


#: The parts of a split.
PARTS = ("train", "eval", "validation")


def _threshold(fraction: float) -> np.uint64:
    """``ceil(fraction * 2**64)`` as the hash bound (fraction < 1)."""
    return np.uint64(math.ceil(math.ldexp(float(fraction), 64)))


def _mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _split_hash(seed: int, file_index: int, rows: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, file index, row index) as uint64.

    ``state = mix(mix(seed') ^ file') + (row + 1) * golden``, ``h = mix(state)``:
    row ``r`` of a file gets the ``r``-th output of a splitmix64 stream whose
    start depends on the seed and the file index.
    """
    with np.errstate(over="ignore"):
        seed_word = np.array([int(seed) & _MASK64], dtype=np.uint64)
        file_word = np.array([(int(file_index) + 1) & _MASK64], dtype=np.uint64)
        base = _mix64(
            _mix64(seed_word * _GOLDEN64 + _GOLDEN64) ^ (file_word * _GOLDEN64)
        )
        counters = np.asarray(rows, dtype=np.uint64) + np.uint64(1)
        return _mix64(base + counters * _GOLDEN64)
