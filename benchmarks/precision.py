"""``model.precision``: the main job in float32 against mixed_bfloat16.

Trains the shipped ``esmm`` config (ESMM on a shared bottom of [256, 128]
with two DCN cross layers, batch 1024) on the synthetic click log under each
precision, each run in a fresh process pinned to its cores, the two
precisions alternating which runs first, ``--repeats`` rounds. The baseline
is ``float32``; the ratio is mixed_bfloat16 ÷ float32 per round.

Timed on batches of one native pass cached in memory before timing (no input
work in the step; tf.data autotuning off, whose iterator teardown adds a
random fixed cost): training examples/s over epochs 2.. of ``model.fit``
(constant learning rate, no selection), and prediction examples/s of
``model.predict`` on the same batches (passes after a first that traces).
After training, the held-out CTR and CTCVR AUC of each run against the
oracle AUC of the true probabilities on the same rows: bfloat16 must not
cost quality.

Writes ``benchmarks/results/precision.json`` and the "precision" section of
``docs/benchmarks.md``, and prints the table.

Usage (from the repository root)::

    python benchmarks/precision.py [--rows 200000] [--repeats 3] [--cores 1]
"""

import argparse
import json
import logging
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import doc_sections
from click_log_runs import add_size_arguments
from click_log_runs import add_worker_arguments
from click_log_runs import check_sizes
from click_log_runs import epoch_timer
from click_log_runs import main_job_config
from click_log_runs import pinned_tensorflow
from click_log_runs import synthetic_click_log
from click_log_runs import write_report
from epoch_timer import examples_per_second
from machine_info import cpu_description
from machine_info import machine

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "precision.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_SECTION = "precision"
SEED = 7
PRECISIONS = ("float32", "mixed_bfloat16")
BASELINE = "float32"
PREDICT_PASSES = 3

logger = logging.getLogger("precision")


def _config(csv: pathlib.Path, work: pathlib.Path, epochs: int, precision: str):
    return main_job_config(
        csv, work, epochs, f"model.precision={precision}", "train.progress=false"
    )


def run_worker(args) -> dict:
    """Child process: one precision; returns its timings and AUCs."""
    tf = pinned_tensorflow(args.num_cores)
    from mtrec.training import build_model
    from mtrec.training import compile_model
    from mtrec.training import datasets
    from mtrec.training import evaluate_model
    from mtrec.training import prepare

    config = _config(args.csv, args.work, args.epochs, args.worker)
    prepared = prepare(config, preprocessing_dir=tempfile.mkdtemp(dir=args.work))
    data = datasets(prepared, config)
    steps = -(-data.train_rows // config.train.batch_size)
    fixed = tf.data.Options()
    fixed.autotune.enabled = False
    train = data.train.take(steps).cache().with_options(fixed)
    for _ in train:  # materialised before anything is timed
        pass
    model = build_model(prepared, config)
    compile_model(model, config)
    timer = epoch_timer()
    model.fit(train, epochs=config.train.epochs, callbacks=[timer], verbose=0)
    model.predict(train, verbose=0)  # traces
    predict_seconds = []
    for _ in range(PREDICT_PASSES):
        begun = time.perf_counter()
        model.predict(train, verbose=0)
        predict_seconds.append(time.perf_counter() - begun)
    report = evaluate_model(model, data.eval, config.eval.oracle)
    rows = data.train_rows
    return {
        "precision": args.worker,
        "cores": args.num_cores,
        "rows": rows,
        "epoch_seconds": [round(s, 4) for s in timer.seconds],
        "train_examples_per_second": examples_per_second(rows, timer.seconds[1:]),
        "predict_examples_per_second": examples_per_second(rows, predict_seconds),
        "auc": {k: round(report[k]["auc"], 5) for k in ("ctr", "ctcvr")},
        "oracle_auc": {k: round(report[k]["oracle_auc"], 5) for k in ("ctr", "ctcvr")},
    }


def _run_child(precision: str, cores: int, csv, work, epochs) -> dict:
    command = [sys.executable, str(pathlib.Path(__file__).resolve())]
    command += ["--worker", precision, "--num-cores", str(cores)]
    command += ["--csv", str(csv), "--work", str(work), "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{precision} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_summary(values: list[float]) -> dict:
    """Min, median and max of per-round ratios, rounded to 3 digits.

    Example:

    >>> ratio_summary([1.5, 1.0, 2.0])
    {'min': 1.0, 'median': 1.5, 'max': 2.0}
    """
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def summarise(runs: list[dict], cores: list[int]) -> dict:
    """Per core count: medians per precision and the per-round ratios."""
    out = {}
    for n in cores:
        by = {p: [r for r in runs if r["cores"] == n and r["precision"] == p]
              for p in PRECISIONS}  # fmt: skip
        entry = {}
        for p, rs in by.items():
            entry[p] = {
                key: round(statistics.median(r[key] for r in rs), 1)
                for key in ("train_examples_per_second", "predict_examples_per_second")
            }
            entry[p]["auc"] = {
                k: round(statistics.median(r["auc"][k] for r in rs), 4)
                for k in ("ctr", "ctcvr")
            }
        entry["oracle_auc"] = by[BASELINE][0]["oracle_auc"]
        for key, name in (
            ("train_examples_per_second", "train_ratio"),
            ("predict_examples_per_second", "predict_ratio"),
        ):
            entry[name] = ratio_summary(
                [
                    b[key] / f[key]
                    for b, f in zip(by["mixed_bfloat16"], by[BASELINE], strict=True)
                ]
            )
        out[str(n)] = entry
    return out


def markdown(report: dict) -> str:
    lines = [
        "## Compute precision: the main job in float32 and mixed_bfloat16",
        "",
        f"`python benchmarks/precision.py --rows {report['rows']} --repeats "
        f"{report['repeats']} --cores {','.join(map(str, report['cores']))}` "
        "(`results/precision.json`). The shipped `esmm` config (shared bottom "
        "[256, 128], two cross layers, batch 1024) on the synthetic click log "
        f"(seed {SEED}), cached batches, epochs 2.. of {report['epochs']} timed, "
        f"{report['repeats']} interleaved rounds, each run a fresh process "
        "pinned to its cores. Ratios are mixed_bfloat16 ÷ float32 per round, "
        "median (min–max). AUC on the held-out rows after the last epoch. "
        f"Machine: {cpu_description(report.get('machine', {}))}.",
        "",
        "| cores | train ex/s float32 / bf16 | train ratio | predict ex/s "
        "float32 / bf16 | predict ratio | CTR AUC float32 / bf16 / oracle | "
        "CTCVR AUC float32 / bf16 / oracle |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for n, e in report["summary"].items():
        f, b, o = e["float32"], e["mixed_bfloat16"], e["oracle_auc"]
        t, p = e["train_ratio"], e["predict_ratio"]
        lines.append(
            f"| {n} | {f['train_examples_per_second']:,.0f} / "
            f"{b['train_examples_per_second']:,.0f} | {t['median']} ({t['min']}–"
            f"{t['max']}) | {f['predict_examples_per_second']:,.0f} / "
            f"{b['predict_examples_per_second']:,.0f} | {p['median']} ({p['min']}–"
            f"{p['max']}) | {f['auc']['ctr']} / {b['auc']['ctr']} / {o['ctr']} | "
            f"{f['auc']['ctcvr']} / {b['auc']['ctcvr']} / {o['ctcvr']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--cores", default="1")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--doc", type=pathlib.Path, default=DOC)
    add_worker_arguments(parser, PRECISIONS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return {}
    info = machine()  # before the runs: its load is the load they met
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_sizes(args)
    cores = [int(c) for c in args.cores.split(",")]
    sys.path.insert(0, str(REPO))
    from mtrec.training import prepare_files

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        csv = synthetic_click_log(work, args.rows, SEED)
        prepare_files(_config(csv, work, args.epochs, BASELINE))  # shared cache
        for repeat in range(args.repeats):
            for n in cores:
                order = PRECISIONS if repeat % 2 == 0 else PRECISIONS[::-1]
                for precision in order:
                    run = _run_child(precision, n, csv, work, args.epochs)
                    logger.info(
                        "round %d, %d core(s), %s: train %.0f ex/s, predict %.0f "
                        "ex/s, AUC %s",
                        repeat,
                        n,
                        precision,
                        run["train_examples_per_second"],
                        run["predict_examples_per_second"],
                        run["auc"],
                    )
                    runs.append({**run, "round": repeat})
    report = {
        "benchmark": "precision",
        "rows": args.rows,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "cores": cores,
        "baseline": BASELINE,
        "machine": info,
        "summary": summarise(runs, cores),
        "runs": runs,
    }
    doc_sections.update_doc_section(args.doc, DOC_SECTION, markdown(report))
    return write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
