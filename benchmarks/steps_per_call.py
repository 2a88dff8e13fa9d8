"""Batches per graph call: mtrec's ``fit`` and ``predict`` at several ``k``.

``MultiTaskRanker`` runs ``fit_steps_per_execution`` /
``predict_steps_per_execution`` batches inside one graph call wherever no one
can tell (``mtrec.models.multi_step``). This script measures what ``k`` buys
on the issue-11 census models (``deepctr_comparison``'s data, sizes and
builder: MMoE, PLE and ESMM over encoded ids, batch 1024, one thread pinned to
one core), so that the default is chosen from a measurement:

- per model and ``k`` in ``--steps-per-call`` (default 1, 16, 32, 64, 128):
  one ``fit`` epoch over the cached training split and one ``predict`` pass
  over it;
- the ``k`` are timed round-robin (``expert_mixing.time_case``: every ``k``
  once per round, ``--repeats`` rounds, after three warm-up calls each that
  trace the multi-step functions), so that the machine's drift falls on all of
  them alike;
- the speed-up of each ``k`` is ``ms(baseline) / ms(k)`` per round, with the
  baseline ``--baseline`` (default 16, the default before this benchmark), as
  min / median / max over the rounds.

The multi-step functions are traced once per model and reused for every ``k``
(the step count is a variable), so no ``k`` pays for tracing in the rounds.

Batches beyond a pass's count run as one call per pass (Keras cuts each call
at the epoch's end), so ``k`` above it all measure the same.

Writes ``benchmarks/results/steps_per_call.json``, prints a markdown table and
rewrites its section of ``docs/benchmarks.md`` (``--no-doc``: not).
"""

import argparse
import logging
import os
import pathlib
import tempfile

import deepctr_comparison as dc
import expert_mixing
import numpy as np
from click_log_runs import write_report
from doc_sections import update_doc_section

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "steps_per_call.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_SECTION = "steps-per-call"
DEFAULT_STEPS = (1, 16, 32, 64, 128)
BASELINE = 16


def parse_arguments(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps-per-call",
        default=",".join(map(str, DEFAULT_STEPS)),
        help="comma-separated batches per graph call, e.g. 1,16,64",
    )
    parser.add_argument("--baseline", type=int, default=BASELINE)
    parser.add_argument("--models", default=",".join(dc.MODELS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--core", type=int, default=None, help="default: the last")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--no-doc", action="store_true", help="leave docs/ alone")
    args = parser.parse_args(argv)
    try:
        args.models = dc.parse_models(args.models)
    except ValueError as error:
        parser.error(str(error))
    try:
        ks = [int(k) for k in args.steps_per_call.split(",")]
    except ValueError:
        parser.error(
            "`--steps-per-call` must be comma-separated integers. Received: "
            f"`--steps-per-call={args.steps_per_call}`"
        )
    if any(k < 1 for k in ks) or args.repeats < 1:
        parser.error(
            "`--steps-per-call` values and `--repeats` must be >= 1. Received: "
            f"`--steps-per-call={args.steps_per_call}`, `--repeats={args.repeats}`"
        )
    if args.baseline not in ks:
        parser.error(
            "`--baseline` must be one of `--steps-per-call`. Received: "
            f"`--baseline={args.baseline}`, `--steps-per-call={args.steps_per_call}`"
        )
    args.steps_per_call = sorted(set(ks))
    return args


def cached_batches(tf, elements: dict):
    """A cached, prefetched dataset of ``elements`` in batches (filled now)."""
    fixed = tf.data.Options()
    fixed.autotune.enabled = False  # as in deepctr_comparison
    data = tf.data.Dataset.from_tensor_slices(elements).batch(dc.BATCH_SIZE)
    data = data.cache().prefetch(dc.PREFETCH).with_options(fixed)
    for _ in data:
        pass
    return data


def training_elements(model_name: str, meta: dict, arrays: dict) -> dict:
    """The train split's inputs (int64 ids, float32 values) and the model's
    float32 labels, by name (mtrec's input dict)."""
    categorical = {f["name"] for f in meta["features"] if f["kind"] == "categorical"}
    elements = {}
    for f in meta["features"]:
        values = arrays[f"train.{f['name']}"]
        elements[f["name"]] = values.astype(
            np.int64 if f["name"] in categorical else np.float32
        )
    for _, label in dc.MODEL_TASKS[model_name]:
        elements[label] = arrays[f"train.{label}"].astype(np.float32)
    return elements


def model_steps(tf, model_name: str, meta: dict, arrays: dict, ks) -> dict:
    """``{"fit k=…": one epoch, "predict k=…": one pass}`` callables."""
    elements = training_elements(model_name, meta, arrays)
    labels = {label for _, label in dc.MODEL_TASKS[model_name]}
    train = cached_batches(tf, elements)
    features = cached_batches(
        tf, {k: v for k, v in elements.items() if k not in labels}
    )
    tf.keras.utils.set_random_seed(dc.SEED)
    model, _ = dc.build_mtrec(model_name, meta, tf)

    def fit(k):
        def run():
            model.fit_steps_per_execution = k
            model.fit(train, epochs=1, verbose=0)

        return run

    def predict(k):
        def run():
            model.predict_steps_per_execution = k
            model.predict(features, verbose=0)

        return run

    return {"fit": {k: fit(k) for k in ks}, "predict": {k: predict(k) for k in ks}}


def markdown(report: dict) -> str:
    lines = [
        "## Batches per graph call (`fit_steps_per_execution`, "
        "`predict_steps_per_execution`)",
        "",
        "`python benchmarks/steps_per_call.py`: mtrec's census models "
        "(`deepctr_comparison`'s sizes) at each k, interleaved rounds.",
        "",
        f"Speed-up = ms per epoch or pass at the baseline k={report['baseline']} "
        "/ ms at k, per round; one core, batch "
        f"{report['batch']}, {report['batches_per_pass']} batches per pass.",
        "",
        *expert_mixing.speedup_lines(report["cases"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, [core])
    tf = expert_mixing.import_tf(1)
    ks = args.steps_per_call
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp) / "data"
        meta = dc.prepare_data(data_dir)
        _, arrays = dc.load_arrays(data_dir, None)
    rows = int(meta["rows"]["train"])
    for model_name in args.models:
        steps = model_steps(tf, model_name, meta, arrays, ks)
        for kind, by_k in steps.items():
            case = f"{model_name} {kind}"
            logging.info("measuring %s", case)
            timed = expert_mixing.time_case(
                {str(k): step for k, step in by_k.items()},
                args.repeats,
                1,
                baseline=str(args.baseline),
            )
            cases[case] = {f"k={k}": r for k, r in timed.items()}
    batches = -(-rows // dc.BATCH_SIZE)
    report = {
        "baseline": args.baseline,
        "steps_per_call": ks,
        "batch": dc.BATCH_SIZE,
        "train_rows": rows,
        "batches_per_pass": batches,
        "core": core,
        "repeats": args.repeats,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "tensorflow": tf.__version__,
        "cases": cases,
    }
    write_report(args.out, report, markdown)
    if not args.no_doc:
        update_doc_section(DOC, DOC_SECTION, markdown(report))
    return report


if __name__ == "__main__":
    main()
