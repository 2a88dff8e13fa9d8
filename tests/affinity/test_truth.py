"""Truth tests of the gain report and of affinity on tasks of designed relation.

Two tasks squeezed through a two-unit shared bottom: the click with a task
driven by the same interest (``related``) shares it at no loss, the click
with a task driven by latents of its own (``independent``) conflicts for the
two units, and ``mtrec compare`` must flag that negative transfer (and only
that). Seeds 0..2, the same data and budget on both sides.
"""

import numpy as np
import pytest

from mtrec.affinity import choose_groups
from mtrec.affinity import compare
from mtrec.data import add_related_tasks
from mtrec.data import generate_click_log
from mtrec.data import write_table
from mtrec.training import load_config
from mtrec.training import train

FEATURES = [
    {"name": "user_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "item_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_hist_ctr", "kind": "dense"},
    {"name": "user_activity", "kind": "dense", "log1p": True},
]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    frame = generate_click_log(60_000, seed=0, num_users=500, num_items=500)
    path = tmp_path_factory.mktemp("truth") / "log.parquet"
    write_table(add_related_tasks(frame, seed=0), path)
    return path


def _truth_config(
    tmp_path, log_path, name: str, tasks: list[str], units: int, seed: int, **train_args
):
    """``tasks`` (label columns of the log) through a shared bottom of ``units``."""
    return load_config(
        {
            "name": name,
            "seed": seed,
            "runs_dir": str(tmp_path / "runs"),
            "features": FEATURES,
            "tasks": [{"name": t, "label": t} for t in tasks],
            "data": {"train": str(log_path)},
            "model": {
                "architecture": "multi_task",
                "backbone_args": {"units": [units]},
                "tower_units": [4],
            },
            "train": {
                "batch_size": 1024,
                "epochs": 4,
                "learning_rate": 0.01,
                "progress": False,
                **train_args,
            },
            "export": {"enabled": False},
            "eval": {"plots": False},
        }
    )


def _pair_config(tmp_path, log_path, other: str, seed: int = 0, **train_args):
    """The click and ``other`` through a two-unit shared bottom."""
    return _truth_config(
        tmp_path, log_path, f"click-{other}", ["click", other], 2, seed, **train_args
    )


def _gain(tmp_path, log_path, other: str) -> dict:
    config = _pair_config(tmp_path, log_path, other)
    return compare(config, seeds=[0, 1, 2], out_dir=tmp_path / other)


@pytest.mark.slow
def test_compare_flags_the_conflicting_task_and_not_the_related_one(tmp_path, log_path):
    related = _gain(tmp_path, log_path, "related")
    conflicting = _gain(tmp_path, log_path, "independent")
    assert related["tasks"]["related"]["negative_transfer"] is False
    assert related["tasks"]["click"]["negative_transfer"] is False
    assert conflicting["tasks"]["independent"]["negative_transfer"] is True
    assert conflicting["delta_m"] < 0 < related["delta_m"]


def _pair_affinity(tmp_path, seed: int, other: str) -> float:
    """``Z(click→other) + Z(other→click)`` of a click + ``other`` model."""
    path = tmp_path / f"log-{seed}.parquet"
    if not path.exists():  # one log per seed, for both pairs
        frame = generate_click_log(60_000, seed=seed, num_users=500, num_items=500)
        write_table(add_related_tasks(frame, seed=seed), path)
    config = _pair_config(
        tmp_path,
        path,
        other,
        seed,
        affinity_every_steps=2,
        selection={"metric": None},
    )
    z = train(config, run_dir=tmp_path / "runs" / f"{other}-{seed}")
    z = z.metrics["affinity"]["affinity"]
    return z["click"][other] + z[other]["click"]


@pytest.mark.slow
def test_affinity_ranks_the_related_task_above_the_independent_one_over_seeds(
    tmp_path,
):
    # The mean over three seeds of the symmetric affinity with the click:
    # related 1.9e-5, independent 8.3e-6. Per seed the estimate is noisy
    # (related -2.0e-5 / -9.8e-6 / 8.7e-5, independent -3.0e-5 / -9.3e-6 /
    # 6.4e-5: seed 1 is a near tie the other way); see docs/affinity.md.
    related = [_pair_affinity(tmp_path, seed, "related") for seed in range(3)]
    independent = [_pair_affinity(tmp_path, seed, "independent") for seed in range(3)]
    mean_related = sum(related) / 3
    mean_independent = sum(independent) / 3
    assert mean_related > 1.5 * mean_independent
    assert sum(r > i for r, i in zip(related, independent, strict=True)) >= 2


FOUR_TASKS = ["click", "related", "independent", "opposed"]


def _four_task_affinity(tmp_path, seed: int) -> dict:
    """``metrics.json``'s affinity of one click + related + independent +
    opposed model through a four-unit shared bottom."""
    frame = generate_click_log(60_000, seed=seed, num_users=500, num_items=500)
    path = tmp_path / f"four-{seed}.parquet"
    write_table(add_related_tasks(frame, seed=seed), path)
    config = _truth_config(
        tmp_path,
        path,
        "four",
        FOUR_TASKS,
        4,
        seed,
        affinity_every_steps=2,
        selection={"metric": None},
    )
    return train(config, run_dir=tmp_path / "runs" / f"four-{seed}").metrics["affinity"]


def _with_click(matrix: dict, task: str) -> float:
    return matrix["click"][task] + matrix[task]["click"]


def _seed_mean(matrices: list[dict]) -> dict:
    return {
        i: {j: float(np.mean([m[i][j] for m in matrices])) for j in FOUR_TASKS}
        for i in FOUR_TASKS
    }


@pytest.mark.slow
def test_affinity_after_the_first_epoch_ranks_and_groups_four_tasks(tmp_path):
    # One model of all four tasks per seed (0..2), through four shared units.
    # Over all epochs (the default matrix) the first epoch's affinities, set
    # by the random towers, dominate: there the independent task outranks
    # the related one on the mean (docs/affinity.md). After the first epoch:
    runs = [_four_task_affinity(tmp_path, seed) for seed in range(3)]
    # The gradient cosine on the shared parameters: on every seed.
    cosines = [run["after_first_epoch"]["cosine"] for run in runs]
    related = [_with_click(c, "related") for c in cosines]
    independent = [_with_click(c, "independent") for c in cosines]
    assert all(r > i for r, i in zip(related, independent, strict=True))
    assert np.mean(related) - np.mean(independent) > 0.5  # of at most 4
    assert np.mean(related) > 0 > np.mean(independent)
    grouping = choose_groups(_seed_mean(cosines), max_groups=2)
    assert grouping.assignment["click"] == ("click", "related")
    # The paper's Z: on the mean over seeds (per seed it misranks now and
    # then: 4 of 5 seeds right, docs/affinity.md).
    z = _seed_mean([run["after_first_epoch"]["affinity"] for run in runs])
    assert _with_click(z, "related") > _with_click(z, "independent")
    grouping = choose_groups(z, max_groups=2)
    assert grouping.assignment["click"] == ("click", "related")
