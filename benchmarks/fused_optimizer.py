"""Training with ``train.fused_optimizer``: legacy (fused) Adam against Keras' Adam.

``mtrec train`` builds its optimiser from ``tf.keras.optimizers.legacy`` when
``train.fused_optimizer`` is true (the default): the same Adam update, one
``ResourceApplyAdam`` kernel per variable where ``tf.keras.optimizers.Adam``
runs several ops. This script measures what that buys on the issue-11 census
models (``deepctr_comparison``'s data, sizes and builder: MMoE, PLE and ESMM
over encoded ids, batch 1024, Adam 1e-3, one thread pinned to one core):

- per model, two copies from the same seed, one compiled with each
  optimiser, each trained one epoch to trace and build its slots;
- then one ``fit`` epoch of each per round, round-robin
  (``expert_mixing.time_case``), ``--repeats`` rounds;
- speed-up = ms per epoch of ``keras`` (the baseline) / ms of ``fused``, per
  round, min / median / max.

Writes ``benchmarks/results/fused_optimizer.json``, prints a markdown table and
rewrites its section of ``docs/benchmarks.md`` (``--no-doc``: not).
"""

import argparse
import logging

import census_rounds
import expert_mixing
from deepctr_settings import LEARNING_RATE
from deepctr_settings import SEED
from deepctr_worker import build_mtrec

RESULTS = census_rounds.REPO / "benchmarks" / "results" / "fused_optimizer.json"
DOC_SECTION = "fused-optimizer"
BASELINE = "keras"


def parse_arguments(argv) -> argparse.Namespace:
    return census_rounds.parse_arguments(argv, __doc__.splitlines()[0], RESULTS)


def optimizer_steps(tf, model_name: str, meta: dict, arrays: dict) -> dict:
    """``{"keras": one epoch, "fused": one epoch}``, each on its own model."""
    train = census_rounds.cached_batches(
        tf, census_rounds.training_elements(model_name, meta, arrays)
    )
    optimizers = {
        BASELINE: tf.keras.optimizers.Adam,
        "fused": tf.keras.optimizers.legacy.Adam,
    }
    steps = {}
    for name, optimizer in optimizers.items():
        tf.keras.utils.set_random_seed(SEED)
        model, _ = build_mtrec(model_name, meta, tf)
        model.compile(optimizer=optimizer(LEARNING_RATE))
        model.fit(train, epochs=1, verbose=0)  # traces, builds the slots

        def epoch(model=model):
            model.fit(train, epochs=1, verbose=0)

        steps[name] = epoch
    return steps


def markdown(report: dict) -> str:
    return "\n".join(
        [
            "## Fused optimiser kernels (`train.fused_optimizer`)",
            "",
            "`python benchmarks/fused_optimizer.py`: one `fit` epoch of mtrec's "
            "census models with `tf.keras.optimizers.Adam` (baseline `keras`) "
            "and `tf.keras.optimizers.legacy.Adam` (`fused`), interleaved "
            f"rounds; {census_rounds.core_words(report)}, batch {report['batch']}.",
            "",
            *expert_mixing.speedup_lines(report["cases"]),
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    info, tf, core, meta, arrays = census_rounds.start(args)
    cases = {}
    for model_name in args.models:
        logging.info("measuring %s", model_name)
        steps = optimizer_steps(tf, model_name, meta, arrays)
        cases[f"{model_name} fit epoch"] = expert_mixing.time_case(
            steps, args.repeats, 1, baseline=BASELINE
        )
    report = {
        "baseline": BASELINE,
        **census_rounds.run_facts(info, tf, args, core, meta),
        "cases": cases,
    }
    return census_rounds.finish(report, args, markdown, DOC_SECTION)


if __name__ == "__main__":
    main()
