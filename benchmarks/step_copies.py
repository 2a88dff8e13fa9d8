"""Copies in the training step: each change of this kind against what it replaced.

Issue 11 (item 3): after the matmuls, a census training step spends its time
moving data. Each case times one change against the code it replaced (the
**baseline** of the case), forward and backward where there is a gradient, on
one thread, interleaved rounds (``expert_mixing.time_case``):

- ``one_hot_indices``: the ``(n, 2)`` int64 indices of the dense-gradient
  gather's sparse one-hot (``gather_with_dense_gradient``), for a census batch
  (31 features x 1024 rows): ``tf.stack([range, ids], axis=1)`` (baseline)
  against ``mtrec.features.table_lookup.int64_pairs``;
- ``id_columns``: 31 id vectors of 1024 as a ``(1024, 31)`` matrix
  (``FeatureEmbedding``): ``tf.stack(axis=1)`` (baseline) against stacking as
  rows and transposing;
- ``esmm_towers``: ESMM's two towers [64, 16] over the same 263 inputs: a
  matmul each (baseline, ``separate_matmuls``) against their first layers in
  one matmul (``mtrec.layers.apply_layers`` on ``Tower`` s);
- ``cgc_task_mix``: a CGC task gate over its 2 own and 2 shared experts of 32
  units: ``mix_experts`` of the concatenated groups (baseline) against
  ``mix_expert_groups``.

Writes ``benchmarks/results/step_copies.json`` and prints a markdown table.

    taskset -c 0 python benchmarks/step_copies.py [--repeats 7] [--steps 50]
"""

import argparse
import json
import logging
import os
import platform
from pathlib import Path

import expert_mixing

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "step_copies.json"
BASELINE = "before"
BATCH = 1024
FEATURES = 31
EMBEDDING_INPUTS = 263  # census ESMM: 31 x 8 embeddings + 7 dense + 8 more
logger = logging.getLogger("step_copies")


def _int_step(tf, build):
    """A ``tf.function`` summing ``build()``'s int64 result (nothing folds away)."""

    @tf.function
    def step():
        return tf.reduce_sum(build())

    return step


def index_cases(tf) -> dict:
    from mtrec.features.table_lookup import int64_pairs

    n = BATCH * FEATURES
    ids = tf.random.Generator.from_seed(0).uniform((n,), 0, 1000, tf.int64)
    count = tf.constant(n, tf.int64)
    return {
        BASELINE: _int_step(tf, lambda: tf.stack([tf.range(count), ids], axis=1)),
        "int64_pairs": _int_step(tf, lambda: int64_pairs(tf.range(count), ids)),
    }


def column_cases(tf) -> dict:
    rng = tf.random.Generator.from_seed(0)
    ids = [rng.uniform((BATCH,), 0, 1000, tf.int64) for _ in range(FEATURES)]
    return {
        BASELINE: _int_step(tf, lambda: tf.stack(ids, axis=1)),
        "stack_rows_transpose": _int_step(
            tf, lambda: tf.transpose(tf.stack(ids, axis=0))
        ),
    }


def tower_cases(tf, layers) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, EMBEDDING_INPUTS))
    towers = [layers.Tower([64, 16], name=f"tower_{i}") for i in range(2)]
    for tower in towers:
        tower.build((None, EMBEDDING_INPUTS))
    weights = [w for tower in towers for w in tower.trainable_weights]

    def separate(x):
        with layers.separate_matmuls():  # entered while the step is traced
            return layers.apply_layers([(x, tower) for tower in towers])

    def shared(x):
        return layers.apply_layers([(x, tower) for tower in towers])

    def as_dict(forward):
        return lambda x: {f"t{i}": y for i, y in enumerate(forward(x))}

    return {
        BASELINE: expert_mixing.make_step(tf, as_dict(separate), weights, x, True),
        "shared_first_matmul": expert_mixing.make_step(
            tf, as_dict(shared), weights, x, True
        ),
    }


def mix_cases(tf, mixture) -> dict:
    rng = tf.random.Generator.from_seed(0)
    own = tf.Variable(rng.normal((BATCH, 2, 32)))
    shared = tf.Variable(rng.normal((BATCH, 2, 32)))
    gates = tf.nn.softmax(rng.normal((BATCH, 4)))

    def concatenated(g):
        return mixture.mix_experts(g, tf.concat([own, shared], axis=1))

    def grouped(g):
        return mixture.mix_expert_groups(g, [own, shared])

    return {
        BASELINE: expert_mixing.make_step(tf, concatenated, [own, shared], gates, True),
        "mix_expert_groups": expert_mixing.make_step(
            tf, grouped, [own, shared], gates, True
        ),
    }


def markdown(report: dict) -> str:
    lines = [
        "Each case's baseline `before` is the code the change replaced. "
        "Speed-up = baseline ms / variant ms per round.",
        "",
        "| case | variant | ms (median) | speed-up min / median / max |",
        "|---|---|---|---|",
    ]
    for case, variants in report["cases"].items():
        for name, r in variants.items():
            s = r["speedup_vs_baseline"]
            lines.append(
                f"| {case} | {name} | {r['ms_median']:.3f} | "
                f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50, help="calls per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tf = expert_mixing.import_tf(args.threads)
    tf.keras.utils.set_random_seed(0)
    from mtrec import layers
    from mtrec.layers import mixture

    builders = {
        f"one_hot_indices n={BATCH * FEATURES}": lambda: index_cases(tf),
        f"id_columns {FEATURES}x{BATCH}": lambda: column_cases(tf),
        f"esmm_towers 2x[64, 16] on {EMBEDDING_INPUTS}": lambda: tower_cases(
            tf, layers
        ),
        "cgc_task_mix 2+2 x[32]": lambda: mix_cases(tf, mixture),
    }
    cases = {}
    for case, build in builders.items():
        logger.info("measuring %s", case)
        cases[case] = expert_mixing.time_case(
            build(), args.repeats, args.steps, baseline=BASELINE
        )
    report = {
        "baseline": BASELINE,
        "batch": BATCH,
        "threads": args.threads,
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
