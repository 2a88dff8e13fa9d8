"""Training steps/s of the feature-layer and loss levers of issue 11, one core.

Issue 11 (item 3) found four costs in mtrec's training step besides the
experts: a vocabulary lookup per feature even when ids are already
``0..V-1``, one embedding gather per table, per-step training metrics (AUC
with 1000 thresholds per task) that could not be turned off, and binary log
losses computed on probabilities. Each has a lever now; this script measures
each alone and all together against the configuration that shipped before
(the **baseline**), all built from the public classes:

- ``baseline``: ``FeatureEmbedding(fused=False)`` (one ``Embedding`` and one
  gather per table), every categorical feature an ``int64`` id with its
  vocabulary ``[0, V)`` (an ``IntegerLookup`` per feature), training metrics
  on, and the log loss of the probability (``ProbabilityLossRanker`` below:
  ``MultiTaskRanker`` with no output scored from its logit, i.e. exactly the
  loss computation before the change);
- ``fused_gather``: ``fused=True`` (one table and one gather per width);
- ``encoded_ids``: ``num_ids: V`` instead of the vocabulary (no lookup);
- ``metrics_off``: ``training_metrics=False``;
- ``logits_loss``: the log loss from the tower logits (``MultiTaskRanker``);
- ``all``: the four together (what a config with encoded ids gets now);
- ``all_xla``: ``all`` under ``model.compile(jit_compile=True)`` (possible
  because every feature is encoded or dense), for information and not run by
  default (``--variants all_xla``): on CPU XLA compiles Adam's sparse update
  of the embedding table (a ``Unique`` over the batch's ids) badly, about
  100x slower than the graph.

The model is census-like (the sizes of the issue): 39 features, 32 categorical
int64 ids with vocabularies of 2-50 ids (embedding 8) and 7 z-scored dense
features; MMoE 8 experts x [32], towers [16], two binary tasks, batch 1024,
Adam 1e-3 on every variable. Batches are random, made once
and cached in memory (``--batches`` distinct ones, cycled), so no input
pipeline is timed.

What is timed: ``model.train_function`` (what ``fit`` runs per step) on
``--steps`` steps, after ``--warmup`` untimed steps that trace and warm up.
The variants run interleaved: ``--repeats`` rounds, each running every variant
once, in an order rotated every round; short rounds keep the variants
compared within one round under similar load. Each round gives each
variant's steps/s and its ratio to the baseline's steps/s in the same round
(> 1: faster), reported as min / median / max over the rounds; ``best / best``
is the variant's fastest round over the baseline's fastest.

Another engineer is fusing the experts inside ``mtrec.layers`` at the same
time, so absolute steps/s move with that work and with the machine's load;
the ratios of these levers within one run are what this measures.

Writes ``benchmarks/results/train_step.json`` and prints a markdown table.

Usage (from the repository root)::

    python benchmarks/train_step.py [--repeats 25] [--steps 10] [--core 0]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from machine_info import cpu_description
from machine_info import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "train_step.json"
BASELINE = "baseline"
BATCH_SIZE = 1024
NUM_CATEGORICAL = 32
NUM_DENSE = 7
EMBEDDING_DIM = 8
TASKS = ("income", "married")
#: name -> (fused, encoded, training_metrics, logits_loss, jit_compile)
VARIANTS = {
    "baseline": (False, False, True, False, False),
    "fused_gather": (True, False, True, False, False),
    "encoded_ids": (False, True, True, False, False),
    "metrics_off": (False, False, False, False, False),
    "logits_loss": (False, False, True, True, False),
    "all": (True, True, False, True, False),
    "all_xla": (True, True, False, True, True),
}


def pin_one_core(core: int | None) -> int:
    """Pins the process to one core and TensorFlow to one thread per pool."""
    available = sorted(os.sched_getaffinity(0))
    core = available[0] if core is None else core
    os.sched_setaffinity(0, {core})
    return core


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[name for name in VARIANTS if name != "all_xla"],
        choices=list(VARIANTS),
        help="subset to run (the baseline is always run)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


class CensusLikeInputs:
    """The census-like features (module docstring) and ``batches`` random
    batches of them, cached and cycled as a ``tf.data.Dataset``."""

    def __init__(self, tf, np, seed: int, batches: int):
        self.tf = tf
        self.rng = np.random.default_rng(seed)
        self.sizes = self.rng.integers(2, 51, NUM_CATEGORICAL)
        self.categorical = [f"c{i}" for i in range(NUM_CATEGORICAL)]
        self.dense = [f"d{i}" for i in range(NUM_DENSE)]
        made = [self._batch(np) for _ in range(batches)]
        dataset = tf.data.Dataset.from_tensors(made[0])
        for other in made[1:]:
            dataset = dataset.concatenate(tf.data.Dataset.from_tensors(other))
        self.dataset = dataset.cache().repeat()

    def features(self, encoded: bool, fused: bool):
        """The feature layer: encoded ids (``num_ids``) or vocabularies."""
        from mtrec.features import FeatureEmbedding

        specs, vocabularies = [], {}
        for name, size in zip(self.categorical, self.sizes, strict=True):
            spec = {"name": name, "dtype": "int64", "embedding_dim": EMBEDDING_DIM}
            if encoded:
                spec["num_ids"] = int(size)
            else:
                vocabularies[name] = list(range(int(size)))
            specs.append(spec)
        specs += [{"name": name, "kind": "dense"} for name in self.dense]
        stats = {
            name: {"mean": 0.0, "std": 1.0, "boundaries": None} for name in self.dense
        }
        return FeatureEmbedding(specs, vocabularies, stats, fused=fused)

    def _batch(self, np) -> dict:
        tf, rng = self.tf, self.rng
        out = {
            name: tf.constant(rng.integers(0, size, BATCH_SIZE), tf.int64)
            for name, size in zip(self.categorical, self.sizes, strict=True)
        }
        for name in self.dense:
            out[name] = tf.constant(rng.normal(size=BATCH_SIZE).astype(np.float32))
        for task in TASKS:
            out[task] = tf.constant((rng.random(BATCH_SIZE) < 0.3).astype(np.float32))
        return out


def warmed_steps(tf, names: list[str], inputs: CensusLikeInputs, args) -> dict:
    """``{variant: (train_function, iterator)}``, each step run ``--warmup``
    times (traced and warm)."""
    from mtrec.layers import MMoE
    from mtrec.models import MultiTaskRanker
    from mtrec.models import Task

    class ProbabilityLossRanker(MultiTaskRanker):
        """The loss as before the change: every output scored as a probability."""

        @property
        def logit_outputs(self) -> set[str]:
            return set()

    runners = {}
    for name in names:
        fused, encoded, metrics, logits, xla = VARIANTS[name]
        tf.keras.utils.set_random_seed(args.seed)
        cls = MultiTaskRanker if logits else ProbabilityLossRanker
        model = cls(
            inputs.features(encoded, fused),
            MMoE(list(TASKS), num_experts=8, expert_units=[32]),
            [Task(task, task) for task in TASKS],
            tower_units=[16],
            training_metrics=metrics,
        )
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), jit_compile=xla)
        step = model.make_train_function()
        iterator = iter(inputs.dataset)
        started = time.perf_counter()
        for _ in range(args.warmup):
            logs = step(iterator)
        float(logs["loss"])
        runners[name] = (step, iterator)
        print(
            f"built and warmed up {name} in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return runners


def interleaved_rounds(runners: dict, names: list[str], args) -> dict:
    """``{variant: [steps/s per round]}``: ``--repeats`` rounds of
    ``--steps`` steps per variant, the order rotated every round."""
    rounds = {name: [] for name in names}
    for r in range(args.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            step, iterator = runners[name]
            started = time.perf_counter()
            for _ in range(args.steps):
                logs = step(iterator)
            float(logs["loss"])
            rounds[name].append(args.steps / (time.perf_counter() - started))
    return rounds


def spread(values: list[float]) -> dict:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def variant_results(rounds: dict) -> dict:
    """Per variant: its levers, steps/s and ratios to the baseline's rounds."""
    results = {}
    for name, values in rounds.items():
        fused, encoded, metrics, logits, xla = VARIANTS[name]
        ratios = [v / b for v, b in zip(values, rounds[BASELINE], strict=True)]
        results[name] = {
            "fused": fused,
            "encoded_ids": encoded,
            "training_metrics": metrics,
            "loss_from_logits": logits,
            "jit_compile": xla,
            "steps_per_second": spread(values),
            "examples_per_second_median": round(statistics.median(values) * BATCH_SIZE),
            "ratio_to_baseline": spread(ratios),
            # Fastest round over the baseline's fastest: the least disturbed
            # by other jobs on a shared machine.
            "best_ratio_to_baseline": round(max(values) / max(rounds[BASELINE]), 3),
            "rounds_steps_per_second": [round(v, 2) for v in values],
        }
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    info = machine()  # before the rounds: its load is the load they met
    core = pin_one_core(args.core)

    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

    # isort: split
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    inputs = CensusLikeInputs(tf, np, args.seed, args.batches)
    names = [BASELINE, *(v for v in args.variants if v != BASELINE)]
    rounds = interleaved_rounds(warmed_steps(tf, names, inputs, args), names, args)
    report = {
        "benchmark": "train_step",
        "baseline": BASELINE,
        "model": {
            "categorical_features": NUM_CATEGORICAL,
            "vocabulary_sizes": [int(s) for s in inputs.sizes],
            "dense_features": NUM_DENSE,
            "embedding_dim": EMBEDDING_DIM,
            "backbone": "MMoE 8 experts x [32]",
            "tower_units": [16],
            "tasks": list(TASKS),
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam 1e-3",
        },
        "protocol": {
            "repeats": args.repeats,
            "steps": args.steps,
            "warmup": args.warmup,
            "cached_batches": args.batches,
            "seed": args.seed,
        },
        "machine": {
            **info,
            "core": core,
            "threads": {"intra_op": 1, "inter_op": 1},
            "tensorflow": tf.__version__,
        },
        "variants": variant_results(rounds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    lines = [
        "| variant | steps/s (median) | examples/s | ratio to baseline "
        "min / median / max | best / best |",
        "|---|---|---|---|---|",
    ]
    for name, result in report["variants"].items():
        sps, ratio = result["steps_per_second"], result["ratio_to_baseline"]
        lines.append(
            f"| {name} | {sps['median']:.1f} | "
            f"{result['examples_per_second_median']:,} | "
            f"{ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f} | "
            f"{result['best_ratio_to_baseline']:.2f} |"
        )
    protocol = report["protocol"]
    lines.append(
        f"\nOne core ({cpu_description(report['machine'])}), one thread; "
        f"{protocol['repeats']} interleaved rounds of "
        f"{protocol['steps']} steps per variant; batch "
        f"{report['model']['batch_size']}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
