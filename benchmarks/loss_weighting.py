"""Loss-weighting strategies compared on census-income and the synthetic click log.

For each data set, each strategy of ``mtrec.weighting.WEIGHTINGS`` and each
seed, trains the same model from the same preprocessing for a fixed number of
epochs and reports the held-out AUC of every task (mean ± std over seeds), the
final effective weights and the training time:

- ``census_income``: the MMoE paper's task group 1 (``income_50k``,
  ``never_married``) from ``mtrec.data.census`` (the UCI test file split
  50/25/25; the test quarter is scored), an MMoE backbone;
- ``click_log``: ESMM (losses: CTR and CTCVR over all impressions) with a
  shared-bottom backbone on ``mtrec.data.synthetic.generate_click_log``,
  held-out by the deterministic hash split; CVR is scored on clicked rows.

Writes JSON to ``benchmarks/results/loss_weighting.json`` (after every run,
so a partial result survives) and prints a table.

Usage (from the repository root)::

    python benchmarks/loss_weighting.py [--seeds 0 1 2] [--strategies dwa pcgrad]
        [--datasets census_income click_log] [--click-rows 40000]
"""

import argparse
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "loss_weighting.json"
CENSUS_RAW = REPO.parent / "shared" / "data" / "census-income" / "census-income.test.gz"
CLICK_FEATURES = REPO / "mtrec" / "configs" / "features" / "click_log.yaml"
#: The protocol these results record: a constant learning rate and no mtrec
#: selection (the benchmark scores every epoch itself), whatever the defaults.
PINNED_TRAIN = {"lr_schedule": "constant", "selection": {"metric": None}}

logger = logging.getLogger("loss_weighting")


def _import_mtrec() -> None:
    """Imports mtrec (and so TensorFlow with Keras 2) from the checkout."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import mtrec  # noqa: F401


def census_setup(workdir: Path) -> dict:
    """Config and files of the census-income benchmark."""
    from mtrec.data import census_features
    from mtrec.data import prepare_census_income

    paths = prepare_census_income(CENSUS_RAW, workdir / "census", group=1, seed=0)
    config = {
        "name": "census_income",
        "features": census_features(embedding_dim=4, numeric="value"),
        "tasks": [
            {"name": "income", "label": "income_50k"},
            {"name": "marital", "label": "never_married"},
        ],
        "data": {"train": str(paths["train"]), "eval": str(paths["test"])},
        "model": {
            "architecture": "multi_task",
            "backbone": "mmoe",
            "backbone_args": {"num_experts": 4, "expert_units": [16]},
            "tower_units": [8],
        },
        "train": {
            "batch_size": 1024,
            "epochs": 2,
            "learning_rate": 0.005,
            **PINNED_TRAIN,
        },
    }
    return {"config": config, "outputs": ["income", "marital"]}


def click_log_setup(workdir: Path, rows: int) -> dict:
    """Config and files of the synthetic click-log benchmark."""
    from mtrec.data import generate_click_log
    from mtrec.data import write_table

    path = workdir / f"click_log_{rows}.parquet"
    if not path.is_file():
        write_table(
            generate_click_log(rows, seed=7, num_users=20_000, num_items=20_000), path
        )
    config = {
        "name": "click_log",
        "features": str(CLICK_FEATURES),
        "tasks": [
            {"name": "ctr", "label": "click"},
            {"name": "cvr", "label": "conversion", "condition": "click"},
        ],
        "data": {
            "train": str(path),
            "eval_fraction": 0.2,
            "label_requires": {"conversion": "click"},
        },
        "model": {
            "architecture": "esmm",
            "backbone": "shared_bottom",
            "backbone_args": {"units": [64, 32]},
            "tower_units": [16],
        },
        "train": {
            "batch_size": 1024,
            "epochs": 2,
            "learning_rate": 0.003,
            **PINNED_TRAIN,
        },
    }
    return {"config": config, "outputs": ["ctr", "cvr", "ctcvr"]}


class DataSet:
    """Preprocessing fitted once per data set, the splits held in memory.

    ``mtrec.training.prepare`` fits the vocabularies and statistics on the
    train split of the config's files; the train and test rows are then read
    (validated) into memory once and shared by every strategy and seed.
    """

    def __init__(self, raw_config: dict, workdir: Path):
        from mtrec.data import read_frame
        from mtrec.training import load_config
        from mtrec.training import prepare

        self.base = load_config(raw_config)
        self.prepared = prepare(
            self.base,
            preprocessing_dir=workdir / raw_config["name"] / "preprocessing",
        )
        source, schema = self.prepared.source, self.prepared.schema
        self.train = self._columns(
            read_frame(source.train, schema, split=source.train_split)
        )
        self.test = self._columns(
            read_frame(source.eval, schema, split=source.eval_split)
        )

    @staticmethod
    def _columns(frame) -> dict:
        import numpy as np

        out = {}
        for name in frame.columns:
            values = frame[name].to_numpy()
            out[name] = values.astype(str) if values.dtype == object else values
        out = {
            k: v.astype(np.float32) if v.dtype == np.float64 else v
            for k, v in out.items()
        }
        return out

    def rows(self, split: str) -> int:
        return len(next(iter(getattr(self, split).values())))


def run_one(data: DataSet, strategy: str, seed: int) -> dict:
    """Trains one model; returns test AUCs, final weights and seconds."""
    import dataclasses

    import tensorflow as tf

    from mtrec.training import NonFiniteLossGuard
    from mtrec.training import WeightingConfig
    from mtrec.training import WeightingUpdate
    from mtrec.training import build_model
    from mtrec.training import evaluate_model

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    config = dataclasses.replace(
        data.base, seed=seed, weighting=WeightingConfig(name=strategy)
    )
    tc = config.train
    model = build_model(data.prepared, config)
    model.compile(optimizer=tf.keras.optimizers.Adam(tc.learning_rate))
    train_ds = (
        tf.data.Dataset.from_tensor_slices(data.train)
        .shuffle(data.rows("train"), seed=seed)
        .batch(tc.batch_size)
    )
    test_ds = tf.data.Dataset.from_tensor_slices(data.test).batch(8192)
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        epochs=tc.epochs,
        verbose=0,
        callbacks=[
            WeightingUpdate(),
            NonFiniteLossGuard(list(model.supervised_tasks())),
        ],
    ).history
    seconds = time.perf_counter() - start
    report = evaluate_model(model, test_ds)
    return {
        "auc": {out: entry.get("auc") for out, entry in report.items()},
        "logloss": {out: entry.get("logloss") for out, entry in report.items()},
        "weights": {
            key[len("weight_") :]: [round(v, 5) for v in values]
            for key, values in history.items()
            if key.startswith("weight_")
        },
        "seconds": round(seconds, 1),
    }


def summarise(runs: list[dict], outputs: list[str]) -> dict:
    out = {"auc": {}, "seconds": round(statistics.mean(r["seconds"] for r in runs), 1)}
    for name in outputs:
        values = [r["auc"][name] for r in runs if r["auc"].get(name) is not None]
        out["auc"][name] = {
            "mean": round(statistics.mean(values), 5),
            "std": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
            "runs": [round(v, 5) for v in values],
        }
    out["final_weights"] = {
        task: round(statistics.mean(r["weights"][task][-1] for r in runs), 4)
        for task in runs[0]["weights"]
    }
    return out


def winners(results: dict, outputs: list[str]) -> dict:
    """Per output: the best strategy and every strategy within one std of it."""
    out = {}
    for name in outputs:
        ranked = sorted(
            results, key=lambda s: results[s]["auc"][name]["mean"], reverse=True
        )
        best = results[ranked[0]]["auc"][name]
        tied = [
            s
            for s in ranked
            if results[s]["auc"][name]["mean"] >= best["mean"] - max(best["std"], 1e-4)
        ]
        out[name] = {"best": ranked[0], "within_one_std": tied, "ranking": ranked}
    return out


def table(dataset: str, results: dict, outputs: list[str]) -> str:
    header = f"{dataset:<18}" + "".join(f"{o:>20}" for o in outputs) + f"{'s/run':>8}"
    lines = [header, "-" * len(header)]
    for strategy, entry in results.items():
        cells = "".join(
            f"{entry['auc'][o]['mean']:>12.4f} ± {entry['auc'][o]['std']:.4f}"
            for o in outputs
        )
        lines.append(f"{strategy:<18}{cells}{entry['seconds']:>8.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", default=["census_income", "click_log"])
    parser.add_argument("--click-rows", type=int, default=40_000)
    parser.add_argument("--workdir", default=None, help="default: a temporary dir")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    _import_mtrec()
    from mtrec.weighting import WEIGHTINGS

    strategies = args.strategies or list(WEIGHTINGS)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtrec-lw-"))
    workdir.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "loss_weighting",
        "platform": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "seeds": args.seeds,
        "datasets": {},
    }
    started = time.perf_counter()
    for dataset in args.datasets:
        if dataset == "census_income":
            if not CENSUS_RAW.is_file():
                logger.warning("skipping census_income: %s not found", CENSUS_RAW)
                continue
            setup = census_setup(workdir)
        else:
            setup = click_log_setup(workdir, args.click_rows)
        data = DataSet(setup["config"], workdir)
        entry = {
            "config": {k: setup["config"][k] for k in ("tasks", "model", "train")},
            "train_rows": data.rows("train"),
            "test_rows": data.rows("test"),
            "runs": {},
            "results": {},
        }
        document["datasets"][dataset] = entry
        for strategy in strategies:
            runs = []
            for seed in args.seeds:
                run = run_one(data, strategy, seed)
                logger.info("%s %s seed %d: %s", dataset, strategy, seed, run["auc"])
                runs.append(run)
            entry["runs"][strategy] = runs
            entry["results"][strategy] = summarise(runs, setup["outputs"])
            entry["winners"] = winners(entry["results"], setup["outputs"])
            document["seconds"] = round(time.perf_counter() - started, 1)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
        print(table(dataset, entry["results"], setup["outputs"]))
    print(f"wrote {args.out} in {math.ceil(time.perf_counter() - started)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
