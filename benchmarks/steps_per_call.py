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

import census_rounds
import expert_mixing
from deepctr_settings import BATCH_SIZE
from deepctr_settings import MODEL_TASKS
from deepctr_settings import SEED
from deepctr_worker import build_mtrec

RESULTS = census_rounds.REPO / "benchmarks" / "results" / "steps_per_call.json"
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
    census_rounds.add_arguments(parser, RESULTS)
    args = parser.parse_args(argv)
    census_rounds.check_arguments(parser, args)
    try:
        ks = [int(k) for k in args.steps_per_call.split(",")]
    except ValueError:
        parser.error(
            "`--steps-per-call` must be comma-separated integers. Received: "
            f"`--steps-per-call={args.steps_per_call}`"
        )
    if any(k < 1 for k in ks):
        parser.error(
            "`--steps-per-call` values must be >= 1. Received: "
            f"`--steps-per-call={args.steps_per_call}`"
        )
    if args.baseline not in ks:
        parser.error(
            "`--baseline` must be one of `--steps-per-call`. Received: "
            f"`--baseline={args.baseline}`, `--steps-per-call={args.steps_per_call}`"
        )
    args.steps_per_call = sorted(set(ks))
    return args


def model_steps(tf, model_name: str, meta: dict, arrays: dict, ks) -> dict:
    """``{"fit k=…": one epoch, "predict k=…": one pass}`` callables."""
    elements = census_rounds.training_elements(model_name, meta, arrays)
    labels = {label for _, label in MODEL_TASKS[model_name]}
    train = census_rounds.cached_batches(tf, elements)
    features = census_rounds.cached_batches(
        tf, {k: v for k, v in elements.items() if k not in labels}
    )
    tf.keras.utils.set_random_seed(SEED)
    model, _ = build_mtrec(model_name, meta, tf)

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
        f"/ ms at k, per round; {census_rounds.core_words(report)}, batch "
        f"{report['batch']}, {report['batches_per_pass']} batches per pass.",
        "",
        *expert_mixing.speedup_lines(report["cases"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    info, tf, core, meta, arrays = census_rounds.start(args)
    ks = args.steps_per_call
    cases = {}
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
    facts = census_rounds.run_facts(info, tf, args, core, meta)
    report = {
        "baseline": args.baseline,
        "steps_per_call": ks,
        **facts,
        "batches_per_pass": -(-facts["train_rows"] // BATCH_SIZE),
        "cases": cases,
    }
    return census_rounds.finish(report, args, markdown, DOC_SECTION)


if __name__ == "__main__":
    main()
