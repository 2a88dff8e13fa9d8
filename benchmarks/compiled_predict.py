"""``predict_jit_compile``: predict through XLA against mtrec's default predict.

``MultiTaskRanker(..., predict_jit_compile=True)`` runs ``predict`` with the
model compiled by XLA, the input checks run before it
(``mtrec.models.compiled_predict``). This script measures it on the issue-11
census models (``deepctr_comparison``'s data, sizes and builder: MMoE, PLE
and ESMM over encoded ids, batch 1024, one thread pinned to one core):

- per model, two copies from the same seed (``default`` and ``xla``), each
  trained one epoch, the ``xla`` copy given the default's weights;
- the first ``predict`` pass of each over the training rows, timed alone:
  tracing, and for ``xla`` XLA's compilation (one shape: the last, shorter
  batch is padded to the full batch's power of two) (``first_pass_seconds``);
- then one ``predict`` pass of each per round, round-robin
  (``expert_mixing.time_case``), ``--repeats`` rounds; speed-up = ms per
  pass of ``default`` (the baseline) / ms of ``xla``, per round, min / median
  / max; the largest difference between the two copies' predictions.

Writes ``benchmarks/results/compiled_predict.json``, prints a markdown table
and rewrites its section of ``docs/benchmarks.md`` (``--no-doc``: not).
"""

import argparse
import logging
import time

import census_rounds
import expert_mixing
import numpy as np
from deepctr_settings import SEED
from deepctr_worker import build_mtrec

RESULTS = census_rounds.REPO / "benchmarks" / "results" / "compiled_predict.json"
DOC_SECTION = "compiled-predict"
BASELINE = "default"


def parse_arguments(argv) -> argparse.Namespace:
    return census_rounds.parse_arguments(argv, __doc__.splitlines()[0], RESULTS)


def predict_passes(tf, model_name: str, meta: dict, arrays: dict) -> tuple:
    """``({"default": a pass, "xla": a pass}, facts)``, each on its own model
    with the same weights; ``facts``: first-pass seconds and the largest
    prediction difference."""
    elements = census_rounds.training_elements(model_name, meta, arrays)
    train = census_rounds.cached_batches(tf, elements)
    models = {}
    for name, compiled in ((BASELINE, False), ("xla", True)):
        tf.keras.utils.set_random_seed(SEED)
        model, _ = build_mtrec(model_name, meta, tf, predict_jit_compile=compiled)
        model.fit(train, epochs=1, verbose=0)  # builds the weights
        models[name] = model
    models["xla"].set_weights(models[BASELINE].get_weights())
    facts, outputs = {"first_pass_seconds": {}}, {}
    for name, model in models.items():
        start = time.perf_counter()
        outputs[name] = model.predict(train, verbose=0)
        facts["first_pass_seconds"][name] = round(time.perf_counter() - start, 3)
    facts["max_abs_difference"] = float(
        max(
            np.max(np.abs(outputs["xla"][key] - outputs[BASELINE][key]))
            for key in outputs[BASELINE]
        )
    )
    passes = {
        name: (lambda model=model: model.predict(train, verbose=0))
        for name, model in models.items()
    }
    return passes, facts


def markdown(report: dict) -> str:
    lines = [
        "## XLA-compiled prediction (`predict_jit_compile`)",
        "",
        "`python benchmarks/compiled_predict.py`: one `predict` pass over the "
        f"census training rows ({report['train_rows']:,}, batch "
        f"{report['batch']}) of mtrec's census models as shipped (`default`) "
        "and with `predict_jit_compile=True` (`xla`: the model compiled by "
        "XLA, the input checks run before it), same weights, interleaved "
        f"rounds; {census_rounds.core_words(report)}.",
        "",
        *expert_mixing.speedup_lines(report["cases"]),
        "",
        "| model | first pass s, default / xla (XLA compiles once per power "
        "of two of the batch size) | largest prediction difference |",
        "|---|---|---|",
    ]
    for model, facts in report["facts"].items():
        first = facts["first_pass_seconds"]
        lines.append(
            f"| {model} | {first[BASELINE]:.2f} / {first['xla']:.2f} | "
            f"{facts['max_abs_difference']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    info, tf, core, meta, arrays = census_rounds.start(args)
    cases, facts = {}, {}
    for model_name in args.models:
        logging.info("measuring %s", model_name)
        passes, facts[model_name] = predict_passes(tf, model_name, meta, arrays)
        cases[f"{model_name} predict pass"] = expert_mixing.time_case(
            passes, args.repeats, 1, baseline=BASELINE
        )
    report = {
        "baseline": BASELINE,
        **census_rounds.run_facts(info, tf, args, core, meta),
        "cases": cases,
        "facts": facts,
    }
    return census_rounds.finish(report, args, markdown, DOC_SECTION)


if __name__ == "__main__":
    main()
