"""Census-income (MMoE paper): per-task test AUC of single-task and multi-task models.

Data: ``../shared/data/census-income/census-income.test.gz`` (99,762 rows), split
once by ``mtrec.data.prepare_census_income`` (split seed 0) into 50%
train, 25% validation, 25% test. The paper trains on the 199,523-row
``census-income.data``, which is not available offline, so our models see a
quarter of the paper's training rows.

Models (ESMM is not involved: architecture ``multi_task``, one tower per task):
``single_task`` (one shared-bottom model per task, the same MLP as
``shared_bottom``), ``shared_bottom``, ``omoe``, ``mmoe``, ``cgc``, ``ple``. The
expert models have 8 experts of one 16-unit layer per level (CGC/PLE: 4 shared +
2 per task), shared-bottom one 128-unit layer, so the first (largest) layer of
every model has 128 units on the 131-wide embedding; every task tower is one
8-unit layer. Same budget for all: the same epochs, batch size, learning rate
and optimiser.

Protocol: every model is trained with seeds 1, 2, 3 (initialisation and
shuffling; the split is the same). After each epoch the validation split is
scored; the weights of the epoch with the best validation AUC (mean over the
model's tasks) are restored, then the test split is scored. The validation
split is used for this epoch choice only.

Each (group, model) runs in a fresh process, so peak RSS is per model (the
maximum over its seeds). Train examples/s is fit time only (see
``throughput.timed_run``); for ``single_task`` it is rows / the summed fit time
of both task models, i.e. per example scored for both tasks.

Writes ``benchmarks/results/census_income.json`` and the "census-income"
section of ``docs/benchmarks.md``; prints the JSON.

Usage (from the repository root)::

    python benchmarks/census_income.py [--group 1|2|both] [--seeds 1 2 3]
        [--epochs 4] [--models mmoe ple] [--quick]
"""

import argparse
import json
import logging
import pathlib
import statistics
import sys
import tempfile
import time

from machine_info import cpu_description
from machine_info import machine

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
from throughput import PINNED_TRAIN
from throughput import REPO
from throughput import peak_rss_mb
from throughput import run_child
from throughput import timed_run
from throughput import update_doc_section

from mtrec.data import COLLEGE_EDUCATION
from mtrec.data import TASK_GROUPS
from mtrec.data import census_features
from mtrec.data import prepare_census_income
from mtrec.training import load_config

CENSUS_FILE = (
    REPO.parent / "shared" / "data" / "census-income" / "census-income.test.gz"
)
RESULTS = REPO / "benchmarks" / "results" / "census_income.json"
SPLIT_SEED = 0

#: Model name -> (backbone, backbone_args); ``single_task`` trains one per task.
MODELS: dict[str, tuple[str, dict]] = {
    "single_task": ("shared_bottom", {"units": [128]}),
    "shared_bottom": ("shared_bottom", {"units": [128]}),
    "omoe": ("omoe", {"num_experts": 8, "expert_units": [16]}),
    "mmoe": ("mmoe", {"num_experts": 8, "expert_units": [16]}),
    "cgc": (
        "cgc",
        {"num_shared_experts": 4, "num_task_experts": 2, "expert_units": [16]},
    ),
    "ple": (
        "ple",
        {
            "num_levels": 2,
            "num_shared_experts": 4,
            "num_task_experts": 2,
            "expert_units": [16],
        },
    ),
}
TOWER_UNITS = [8]
#: Task name of each label column. A task must not be named like its label
#: column: ``mtrec.training.evaluate.predict_dataset`` keys model outputs and
#: kept columns in one dict, so the two would be mixed.
TASK_NAMES = {
    "income_50k": "income",
    "never_married": "marital",
    "education_college": "education",
}

#: MMoE paper (Ma et al., KDD 2018), census-income group 1, trained on 199,523 rows.
PAPER_GROUP1_MMOE = {"income": 0.9359, "marital": 0.9927}

logger = logging.getLogger("census_income")


def make_config(
    paths: dict, tasks: list[str], backbone: str, backbone_args: dict, seed: int, args
) -> dict:
    """The run config (as a dict) of one model and seed."""
    return {
        "name": f"census-{backbone}",
        "seed": seed,
        "features": census_features(numeric="value"),
        "tasks": [{"name": TASK_NAMES[t], "label": t} for t in tasks],
        "data": {"train": str(paths["train"]), "eval": str(paths["val"])},
        "model": {
            "architecture": "multi_task",
            "backbone": backbone,
            "backbone_args": backbone_args,
            "tower_units": TOWER_UNITS,
        },
        "train": {
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "optimizer": "adam",
            "progress": False,
            **PINNED_TRAIN,
        },
        "export": {"enabled": False},
    }


def measure(model_name: str, group: int, args) -> dict:
    """Child process: all seeds of one model on one group."""
    paths = prepare_census_income(
        CENSUS_FILE, args.data_dir / f"group{group}", group=group, seed=SPLIT_SEED
    )
    labels = list(TASK_GROUPS[group])
    backbone, backbone_args = MODELS[model_name]
    task_sets = [[t] for t in labels] if model_name == "single_task" else [labels]
    seeds = []
    for seed in args.seeds:
        auc, logloss, best_epochs = {}, {}, []
        seconds, steady_seconds, parameters = 0.0, 0.0, 0
        configs = []
        for task_set in task_sets:
            config_dict = make_config(
                paths, task_set, backbone, backbone_args, seed, args
            )
            config = load_config(config_dict)
            with tempfile.TemporaryDirectory() as tmp:
                result = timed_run(
                    config,
                    tmp,
                    eval_paths={"val": str(paths["val"]), "test": str(paths["test"])},
                    select_on="val",
                )
            for label in task_set:
                task = TASK_NAMES[label]
                auc[task] = result["eval"]["test"][task]["auc"]
                logloss[task] = result["eval"]["test"][task]["logloss"]
            epoch_seconds = result["epoch_seconds"]
            steady = epoch_seconds[1:] or epoch_seconds
            seconds += sum(epoch_seconds)
            steady_seconds += sum(steady)
            rows = result["rows_per_epoch"] * len(epoch_seconds)
            steady_rows = result["rows_per_epoch"] * len(steady)
            best_epochs.append(result["best_epoch"])
            parameters += result["parameters"]["total"]
            configs.append({k: config_dict[k] for k in ("tasks", "model", "train")})
        seeds.append(
            {
                "seed": seed,
                "test_auc": auc,
                "test_logloss": logloss,
                "best_epoch": best_epochs,
                "fit_seconds": round(seconds, 3),
                "examples_per_second": round(rows / seconds),
                "examples_per_second_steady": round(steady_rows / steady_seconds),
                "parameters": parameters,
                "parameters_detail": result["parameters"],
            }
        )
        logger.info("%s group %d seed %d: %s", model_name, group, seed, auc)
    return {
        "seeds": seeds,
        "configs": configs,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def mean_std(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "per_seed": [round(v, 4) for v in values],
    }


def summarise(model_name: str, tasks: list[str], child: dict) -> dict:
    seeds = child["seeds"]
    return {
        "test_auc": {t: mean_std([s["test_auc"][t] for s in seeds]) for t in tasks},
        "test_logloss": {
            t: mean_std([s["test_logloss"][t] for s in seeds]) for t in tasks
        },
        "best_epoch": [s["best_epoch"] for s in seeds],
        "examples_per_second": round(
            statistics.fmean(s["examples_per_second"] for s in seeds)
        ),
        "examples_per_second_steady": round(
            statistics.fmean(s["examples_per_second_steady"] for s in seeds)
        ),
        "parameters": seeds[0]["parameters"],
        "parameters_detail": seeds[0]["parameters_detail"]
        | ({"models": len(tasks)} if model_name == "single_task" else {}),
        "peak_rss_mb": child["peak_rss_mb"],
        "config": child["configs"][0]
        if len(child["configs"]) == 1
        else child["configs"],
    }


def _epochs(best: list[list[int]]) -> str:
    """Best epoch per seed; ``a/b`` for the two models of ``single_task``."""
    return ", ".join("/".join(map(str, per_seed)) for per_seed in best)


def markdown(report: dict) -> str:
    """The "census-income" section of docs/benchmarks.md."""
    budget = report["budget"]
    lines = [
        "## census-income",
        "",
        "`python benchmarks/census_income.py` "
        f"({'--quick, ' if report['quick'] else ''}"
        f"{budget['epochs']} epochs, batch {budget['batch_size']}, Adam lr "
        f"{budget['learning_rate']}, seeds {budget['seeds']}; wall time "
        f"{report['wall_seconds'] / 60:.1f} min on "
        f"{report.get('cpus_available', report['cpu_count'])} of the machine's "
        f"{report['cpu_count']} cores, {cpu_description(report)}). Test AUC, "
        "mean ± std over seeds.",
        "",
        "Data: the UCI census-income (KDD) **test** file only (99,762 rows; the "
        "199,523-row train file is not available offline), split once (seed 0) "
        "into 50% train (49,881 rows), 25% validation, 25% test. So our models "
        "train on **half of the 99,762-row test file**, a quarter of the paper's "
        "training data, and are tested on a different sample than the paper's. "
        "Education and marital status are removed from the inputs (38 features: "
        "31 categorical, 7 dense); the validation split only picks the epoch "
        "(best mean validation AUC over the model's tasks).",
        "",
    ]
    for group, entry in report["groups"].items():
        tasks = entry["tasks"]
        lines += [
            f"### Group {group}: "
            + " + ".join(f"{t} (`{entry['labels'][t]}`)" for t in tasks),
            "",
            "| model | "
            + " | ".join(f"{t} AUC" for t in tasks)
            + " | params | train ex/s | peak RSS MB | best epochs |",
            "|---|" + "---:|" * len(tasks) + "---:|---:|---:|---|",
        ]
        for name, m in entry["models"].items():
            aucs = " | ".join(
                f"{m['test_auc'][t]['mean']:.4f} ± {m['test_auc'][t]['std']:.4f}"
                for t in tasks
            )
            lines.append(
                f"| {name} | {aucs} | {m['parameters']:,} | "
                f"{m['examples_per_second_steady']:,} | {m['peak_rss_mb']:.0f} | "
                f"{_epochs(m['best_epoch'])} |"
            )
        if group == "1":
            paper = " | ".join(f"{PAPER_GROUP1_MMOE[t]:.4f}" for t in tasks)
            lines.append(
                f"| *MMoE paper (trained on 199,523 rows)* | {paper} | | | | |"
            )
        lines.append("")
    lines += [
        "`params`: trainable parameters including the embeddings (for "
        "`single_task` the sum of the two models). `train ex/s`: examples per "
        "second of `model.fit` alone, epochs 2.. (the first one traces the graph); "
        "for `single_task`, rows over the summed fit time of both models. "
        "`education_college` counts the six degree "
        f"values ({', '.join(sorted(COLLEGE_EDUCATION))}); 'Some college but no "
        "degree' does not count.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=["1", "2", "both"], default="1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=None)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 epoch, 2 seeds, group 1"
    )
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=REPO / "data" / "census-income",
        help="where the Parquet split is written (git-ignored data/)",
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        "--doc", type=pathlib.Path, default=REPO / "docs" / "benchmarks.md"
    )
    parser.add_argument("--measure", choices=list(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--measure-group", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.group = 1, args.seeds[:2], "1"
    if args.measure:  # child process: one model, one group, JSON on stdout
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        result = measure(args.measure, args.measure_group, args)
        print(json.dumps(result))
        return result

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()
    started = time.perf_counter()
    groups = [1, 2] if args.group == "both" else [int(args.group)]
    models = args.models or list(MODELS)
    report_groups = {}
    for group in groups:
        # Written once here, so the children only read it.
        prepare_census_income(
            CENSUS_FILE, args.data_dir / f"group{group}", group=group, seed=SPLIT_SEED
        )
        tasks = [TASK_NAMES[label] for label in TASK_GROUPS[group]]
        entry = {
            "tasks": tasks,
            "labels": {TASK_NAMES[label]: label for label in TASK_GROUPS[group]},
            "models": {},
        }
        for name in models:
            child = [__file__, "--measure", name, "--measure-group", str(group)]
            child += ["--seeds", *map(str, args.seeds), "--epochs", str(args.epochs)]
            child += ["--batch-size", str(args.batch_size)]
            child += ["--learning-rate", str(args.learning_rate)]
            child += ["--data-dir", str(args.data_dir)]
            begun = time.perf_counter()
            entry["models"][name] = summarise(name, tasks, run_child(child))
            entry["models"][name]["wall_seconds"] = round(
                time.perf_counter() - begun, 1
            )
            logger.info(
                "group %d %s: %s", group, name, entry["models"][name]["test_auc"]
            )
        report_groups[str(group)] = entry
    report = {
        "benchmark": "census_income",
        "data": {
            "file": str(CENSUS_FILE),
            "split": "50/25/25 train/val/test of census-income.test, split seed 0",
            "epoch_selection": "best mean validation AUC over the model's tasks",
        },
        "budget": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "optimizer": "adam",
            "seeds": args.seeds,
            "tower_units": TOWER_UNITS,
        },
        "paper_reference": {
            "source": "Ma et al., KDD 2018, census-income group 1, MMoE, "
            "trained on 199,523 rows",
            "test_auc": PAPER_GROUP1_MMOE,
        },
        "quick": args.quick,
        **info,
        "groups": report_groups,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    update_doc_section(args.doc, "census-income", markdown(report))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
