"""The MMoE paper's synthetic two-task regression data with a set task correlation.

Ma et al. (KDD 2018, section 4) control how related two tasks are through the
cosine between their weight vectors::

    u_1, u_2            orthogonal unit vectors in R^d
    w_1 = c u_1
    w_2 = c (p u_1 + sqrt(1 - p^2) u_2)          # cos(w_1, w_2) = p
    x ~ N(0, I_d)
    y_k = w_k^T x + sum_{i=1..m} sin(alpha_i w_k^T x + beta_i) + eps_k

with ``alpha_i ~ N(0, alpha_std^2)``, ``beta_i ~ N(0, 1)`` shared by both tasks and
``eps_k ~ N(0, noise_std^2)``. Because ``x ~ N(0, I)``, the Pearson correlation
of the linear parts ``w_1^T x`` and ``w_2^T x`` is exactly ``p``; the labels'
correlation is lower, as the sine terms are nonlinear.

For one seed, ``u_1``, ``u_2``, ``alpha``, ``beta``, ``x`` and the noise are the
same whatever ``p`` is, so ``y1`` does not change with ``p`` and data sets that
differ only in ``p`` differ only through ``w_2`` (a controlled comparison).

Choices where the paper is not explicit:

* ``alpha``, ``beta``: the paper calls them "given parameters" without a
  distribution; they are drawn from ``N(0, 1)`` per seed (as public
  reproductions do). The task's shape then varies a lot between seeds: with
  ``c = 1``, ``m = 10``, ``d = 100`` the label variance of seeds 1..10 ranges
  from about 0.5 to 11.5, and the share of it a linear model of ``x`` explains
  from about 1% (seeds 1 and 10) to 98% (seed 8). When that low-order signal
  is small, a network trained by gradient descent first sits on a plateau at
  ``MSE ~ Var(y)`` while it looks for the direction ``w_k`` among ``d``; on
  seed 1 this lasts about 1,000-2,000 Adam steps (batch 256, learning rate
  0.002), so short trainings learn nothing on such seeds.
* ``alpha_std`` (default 1) scales the frequencies: ``alpha_i ~ N(0,
  alpha_std^2)``. Larger values make each label oscillate faster along
  ``w_k^T x``, so it takes more units to fit (seed 2: a cubic in ``w_k^T x``
  leaves 4% of the variance at ``alpha_std = 1``, 37% at 4).
* ``eps_k ~ N(0, 0.01)`` in the paper is read as a standard deviation of 0.01
  (``noise_std``); either reading is far below what the paper's models reach.
* Labels are not standardised here. To compare errors across seeds (whose
  label variances differ twenty-fold), standardise them with the training
  rows' statistics: :func:`standardize_labels`. The MSE is then the fraction
  of the label variance left unexplained.

References:
  Ma, Zhao, Yi, Chen, Hong, Chi. "Modeling Task Relationships in Multi-task
  Learning with Multi-gate Mixture-of-Experts." KDD 2018.
"""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.checks import check_int

LABEL_COLUMNS: tuple[str, str] = ("y1", "y2")


@dataclasses.dataclass(frozen=True)
class MMoETaskParams:
    """The hidden parameters behind :func:`generate_mmoe_regression`.

    Attributes:
      w1: the first task's weights, shape ``(input_dim,)``, ``||w1|| = c``.
      w2: the second task's weights, ``||w2|| = c``, ``cos(w1, w2) = p``.
      alpha: the sine frequencies ``alpha_i``, shape ``(num_sin,)``.
      beta: the sine phases ``beta_i``, shape ``(num_sin,)``.
    """

    w1: np.ndarray
    w2: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray


def mmoe_task_params(
    correlation: float,
    seed: int,
    *,
    input_dim: int = 100,
    c: float = 1.0,
    num_sin: int = 10,
    alpha_std: float = 1.0,
) -> MMoETaskParams:
    """Draws the task weights and sine parameters of the MMoE synthetic data.

    ``generate_mmoe_regression`` with the same arguments uses exactly these.

    Args:
      correlation: ``p``, the cosine between ``w1`` and ``w2``, in [-1, 1].
      seed: seed of the draws (a non-negative integer).
      input_dim: ``d``, the input dimension, >= 2. Default 100.
      c: the norm of both weight vectors, > 0. Default 1.0.
      num_sin: ``m``, the number of sine terms, >= 0. Default 10.
      alpha_std: std of the sine frequencies ``alpha_i``, > 0. Default 1.0.

    Returns:
      An ``MMoETaskParams``.

    Raises:
      ValueError: if an argument is out of range.
    """
    _validate(correlation, seed, input_dim, c, num_sin, alpha_std)
    params_rng, _ = _generators(seed)
    return _draw_params(
        params_rng, float(correlation), input_dim, c, num_sin, alpha_std
    )


def generate_mmoe_regression(
    num_rows: int,
    correlation: float,
    seed: int,
    *,
    input_dim: int = 100,
    c: float = 1.0,
    num_sin: int = 10,
    noise_std: float = 0.01,
    alpha_std: float = 1.0,
) -> pd.DataFrame:
    """Draws two regression tasks whose correlation is controlled by ``p``.

    ``y_k = w_k^T x + sum_i sin(alpha_i w_k^T x + beta_i) + eps_k`` with
    ``cos(w_1, w_2) = p`` (see the module docstring).

    Args:
      num_rows: number of rows, >= 1.
      correlation: ``p``, the cosine between the task weights, in [-1, 1].
      seed: seed of every draw (a non-negative integer).
      input_dim: ``d``, the number of inputs ``x0..x{d-1}``, >= 2. Default 100.
      c: the norm of both weight vectors, > 0. Default 1.0.
      num_sin: ``m``, the number of sine terms, >= 0. Default 10.
      noise_std: std of the label noise ``eps_k``, >= 0. Default 0.01.
      alpha_std: std of the sine frequencies ``alpha_i``, > 0. Default 1.0.

    Returns:
      A DataFrame with float64 columns ``x0..x{d-1}``, ``y1``, ``y2``.

    Raises:
      ValueError: if an argument is out of range.

    Example:

    >>> df = generate_mmoe_regression(1_000, correlation=0.5, seed=1, input_dim=8)
    >>> list(df.columns[-3:])
    ['x7', 'y1', 'y2']
    """
    check_int("num_rows", num_rows, 1)
    _validate(correlation, seed, input_dim, c, num_sin, alpha_std)
    if not (math.isfinite(noise_std) and noise_std >= 0.0):
        raise ValueError(
            f"`noise_std` must be >= 0. Received: `noise_std={noise_std!r}`"
        )
    params_rng, data_rng = _generators(seed)
    params = _draw_params(
        params_rng, float(correlation), input_dim, c, num_sin, alpha_std
    )
    x = data_rng.standard_normal((num_rows, input_dim))
    noise = data_rng.normal(0.0, noise_std, (num_rows, 2))
    columns = {f"x{j}": x[:, j] for j in range(input_dim)}
    for k, w in enumerate((params.w1, params.w2)):
        linear = x @ w
        waves = np.sin(np.outer(linear, params.alpha) + params.beta).sum(axis=1)
        columns[LABEL_COLUMNS[k]] = linear + waves + noise[:, k]
    return pd.DataFrame(columns)


def standardize_labels(
    train: pd.DataFrame,
    *others: pd.DataFrame,
    columns: Sequence[str] = LABEL_COLUMNS,
) -> tuple[list[pd.DataFrame], dict[str, tuple[float, float]]]:
    """Standardises label columns with the training rows' mean and std.

    ``y' = (y - mean_train(y)) / std_train(y)`` (population std) for every
    column in ``columns``, in ``train`` and in each of ``others``; the other
    columns are copied unchanged and the inputs are not modified. The MSE of a
    prediction of ``y'`` is the MSE of ``y`` divided by ``Var_train(y)``.

    Args:
      train: the training rows; their statistics are used for every frame.
      *others: more frames (e.g. the test rows) with the same label columns.
      columns: the label columns. Default ``("y1", "y2")``.

    Returns:
      ``([train', *others'], {column: (mean, std)})``.

    Raises:
      ValueError: if a column is missing from a frame, is constant in
        ``train``, or holds a value that is not finite (naming the frame, the
        column and the row's index label).

    Example:

    >>> df = generate_mmoe_regression(1_000, 0.5, seed=1, input_dim=4)
    >>> (train, test), stats = standardize_labels(df.iloc[:800], df.iloc[800:])
    >>> round(float(train["y1"].mean()), 12), round(float(train["y1"].std(ddof=0)), 12)
    (0.0, 1.0)
    """
    frames = [train, *others]
    names = ["train", *(f"others[{i}]" for i in range(len(others)))]
    stats: dict[str, tuple[float, float]] = {}
    for column in columns:
        for frame, name in zip(frames, names, strict=True):
            if column not in frame.columns:
                raise ValueError(
                    f"`columns` must name columns of every frame. Received: "
                    f"`columns={list(columns)!r}`, missing {column!r} in {name}"
                )
            bad = ~np.isfinite(frame[column].to_numpy(dtype=np.float64))
            if bad.any():
                raise ValueError(
                    f"Label {column!r} must be finite. Received: "
                    f"{float(frame[column].iloc[bad.argmax()])} in {name} at row "
                    f"{frame.index[bad.argmax()]} ({int(bad.sum())} such rows)"
                )
        values = train[column].to_numpy(dtype=np.float64)
        mean, std = float(values.mean()), float(values.std())
        if not std > 0.0:
            raise ValueError(
                f"Label {column!r} must be finite and not constant in `train`. "
                f"Received: mean={mean!r}, std={std!r}"
            )
        stats[column] = (mean, std)
    out = []
    for frame in frames:
        frame = frame.copy()
        for column, (mean, std) in stats.items():
            frame[column] = (frame[column].to_numpy(dtype=np.float64) - mean) / std
        out.append(frame)
    return out, stats


def _generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for the parameters and for the rows of one seed."""
    params_seq, data_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(params_seq), np.random.default_rng(data_seq)


def _draw_params(
    rng: np.random.Generator,
    p: float,
    input_dim: int,
    c: float,
    num_sin: int,
    alpha_std: float,
) -> MMoETaskParams:
    # Orthonormal u1, u2: QR of a Gaussian d x 2 matrix (signs made unique).
    q, r = np.linalg.qr(rng.standard_normal((input_dim, 2)))
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    u1, u2 = q[:, 0], q[:, 1]
    alpha = alpha_std * rng.standard_normal(num_sin)
    beta = rng.standard_normal(num_sin)
    w1 = c * u1
    w2 = c * (p * u1 + math.sqrt(max(0.0, 1.0 - p * p)) * u2)
    return MMoETaskParams(w1=w1, w2=w2, alpha=alpha, beta=beta)


def _validate(
    correlation: float,
    seed: int,
    input_dim: int,
    c: float,
    num_sin: int,
    alpha_std: float,
) -> None:
    if not (_is_real(correlation) and -1.0 <= correlation <= 1.0):
        raise ValueError(
            f"`correlation` must be in [-1, 1]. Received: `correlation={correlation!r}`"
        )
    check_int("seed", seed, 0)
    check_int("input_dim", input_dim, 2)
    check_int("num_sin", num_sin, 0)
    if not (math.isfinite(c) and c > 0.0):
        raise ValueError(f"`c` must be > 0. Received: `c={c!r}`")
    if not (_is_real(alpha_std) and math.isfinite(alpha_std) and alpha_std > 0.0):
        raise ValueError(
            f"`alpha_std` must be > 0. Received: `alpha_std={alpha_std!r}`"
        )


def _is_real(value: object) -> bool:
    """A Python or NumPy int or float, not a bool (NaN passes: compare it next)."""
    is_number = isinstance(value, int | float | np.floating | np.integer)
    return is_number and not isinstance(value, bool)
