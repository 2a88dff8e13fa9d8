"""Forward and backward time of expert computation, gating and mixing, one thread.

Issue 11 (item 3) found that mixing experts with ``tf.einsum`` costs more in
its backward pass than a multiply-and-sum, and that computing the experts of a
mixture as one matmul is much faster than one dense layer per expert. This
script measures, on one thread, each lever against the implementation that
shipped before (the **baseline**: one ``MLP`` per expert, one ``Gate`` per task,
``tf.einsum`` mixing, built here from the public ``MLP`` and ``Gate`` layers):

- ``mix_forward`` / ``mix_forward_backward``: mixing ``(b, n)`` gates with
  ``(b, n, u)`` experts, once per task (2 tasks), by ``einsum`` (baseline),
  ``multiply_sum`` (``reduce_sum(g[:, :, None] * e, 1)``), ``matmul``
  (``(g[:, None, :] @ e)[:, 0]``), and ``matmul_all_tasks`` (one
  ``(b, T, n) @ (b, n, u)`` for all tasks), at MMoE's n=8 and PLE's task
  gates' n=4;
- ``experts``: ``n`` experts as ``n`` ``MLP`` s stacked (baseline) against one
  ``Experts`` layer (one ``(d, n*u)`` matmul, deeper layers one batched
  matmul), one and two layers deep;
- ``gates``: ``T`` linear ``Gate`` layers (baseline) against one ``Experts``
  of ``T`` linear "experts" of ``n`` units and a per-task softmax (a fused
  gate bank);
- ``cgc_groups``: a CGC level's experts (2 tasks x 2 + 2 shared, one input):
  per-expert ``MLP`` s (baseline), one ``Experts`` per group, one stacked
  ``Experts`` for all groups;
- ``mmoe`` and ``ple``: a whole layer: the baseline against
  ``mtrec.layers.MMoE`` / ``mtrec.layers.PLE`` as shipped (expert groups and
  linear gates reading one input share one matmul, ``apply_layers``; MMoE
  mixes all tasks by one batched matmul) and the same layer traced inside
  ``separate_matmuls`` (a matmul per group and gate, as the gradient
  weightings trace it).

Every measurement is a ``tf.function`` computing the outputs, a loss
``sum(y * r)`` with fixed random ``r`` and the gradients of every weight and the
input. Variants of a case run interleaved (round robin over the variants,
``--repeats`` rounds of ``--steps`` calls each, after a warm-up); each round
gives a time per call and a ratio baseline / variant (> 1: the variant is
faster), reported as min / median / max over the rounds.

Sizes from the issue: batch 1024, input 39 * 8 = 312, 8 experts x [32] for
MMoE, PLE 2 levels of 2 shared + 2 task experts x [32], 2 tasks.

Writes ``benchmarks/results/expert_mixing.json`` and prints a markdown table.

Usage (from the repository root; pin to one core as well)::

    taskset -c 0 python benchmarks/expert_mixing.py [--repeats 7] [--steps 50]
"""

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from click_log_runs import write_report
from machine_info import cpu_description
from machine_info import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "expert_mixing.json"
BASELINE = "per_expert_einsum"

BATCH = 1024
INPUT_DIM = 39 * 8
TASKS = ["ctr", "cvr"]
MMOE = {"num_experts": 8, "expert_units": [32]}
PLE = {
    "num_levels": 2,
    "num_shared_experts": 2,
    "num_task_experts": 2,
    "expert_units": [32],
}

logger = logging.getLogger("expert_mixing")


def import_tf(threads: int):
    """TensorFlow with ``threads`` intra- and inter-op threads, mtrec imported
    first (the Keras 2 switch)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import tensorflow as tf

    import mtrec  # noqa: F401  # isort: split  (Keras 2 switch first)

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


# -- the previous implementation, rebuilt from public layers ---------------------


def einsum_mix(tf, gates, experts):
    return tf.einsum("bn,bnu->bu", gates, experts)


class BaselineMMoE:
    """MMoE as it shipped before: one MLP per expert, one Gate per task, einsum."""

    def __init__(self, tf, layers, input_dim, num_experts, expert_units):
        self.tf = tf
        self.experts = [
            layers.MLP(expert_units, name=f"expert_{i}") for i in range(num_experts)
        ]
        self.gates = [layers.Gate(num_experts, name=f"gate_{t}") for t in TASKS]
        for layer in [*self.experts, *self.gates]:
            layer.build((None, input_dim))
        self.trainable_weights = [
            w for layer in [*self.experts, *self.gates] for w in layer.trainable_weights
        ]

    def __call__(self, x):
        tf = self.tf
        experts = tf.stack([e(x) for e in self.experts], axis=1)
        return {t: einsum_mix(tf, g(x), experts) for t, g in zip(TASKS, self.gates)}


class BaselineCGC:
    """A CGC level as it shipped before (per-expert MLPs, per-gate Gate, einsum)."""

    def __init__(self, tf, layers, input_dim, shared, per_task, units, last):
        self.tf, self.last = tf, last
        self.own = {
            t: [layers.MLP(units, name=f"{t}_expert_{i}") for i in range(per_task)]
            for t in TASKS
        }
        self.shared = [layers.MLP(units, name=f"shared_{i}") for i in range(shared)]
        self.gates = {
            t: layers.Gate(per_task + shared, name=f"gate_{t}") for t in TASKS
        }
        if not last:
            self.gates["shared"] = layers.Gate(
                len(TASKS) * per_task + shared, name="gate_shared"
            )
        self.all = [*(e for t in TASKS for e in self.own[t]), *self.shared]
        for layer in [*self.all, *self.gates.values()]:
            layer.build((None, input_dim))
        self.trainable_weights = [
            w for layer in [*self.all, *self.gates.values()] for w in layer.weights
        ]

    def __call__(self, x):
        tf = self.tf
        if not isinstance(x, dict):
            x = {k: x for k in [*TASKS, "shared"]}
        shared = [e(x["shared"]) for e in self.shared]
        own = {t: [e(x[t]) for e in self.own[t]] for t in TASKS}
        out = {}
        for t in TASKS:
            stacked = tf.stack(own[t] + shared, axis=1)
            out[t] = einsum_mix(tf, self.gates[t](x[t]), stacked)
        if not self.last:
            everyone = [h for t in TASKS for h in own[t]] + shared
            out["shared"] = einsum_mix(
                tf, self.gates["shared"](x["shared"]), tf.stack(everyone, axis=1)
            )
        return out


class BaselinePLE:
    def __init__(self, tf, layers, input_dim, levels, shared, per_task, units):
        self.levels = []
        for level in range(levels):
            dim = input_dim if level == 0 else units[-1]
            last = level == levels - 1
            self.levels.append(
                BaselineCGC(tf, layers, dim, shared, per_task, units, last)
            )
        self.trainable_weights = [w for c in self.levels for w in c.trainable_weights]

    def __call__(self, x):
        for level in self.levels:
            x = level(x)
        return x


# -- measurement -----------------------------------------------------------------


def make_step(tf, forward: Callable, weights: list, x, backward: bool):
    """A ``tf.function``: loss ``sum_k sum(y_k * r_k)`` and, if asked, gradients."""
    probe = forward(x)
    outputs = probe if isinstance(probe, dict) else {"y": probe}
    rng = tf.random.Generator.from_seed(1)
    targets = {k: rng.normal(tuple(v.shape)) for k, v in outputs.items()}
    sources = [x, *weights]

    def loss_of(y):
        y = y if isinstance(y, dict) else {"y": y}
        return tf.add_n([tf.reduce_sum(y[k] * targets[k]) for k in targets])

    if backward:

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_of(forward(x))
            return tape.gradient(loss, sources)

    else:

        @tf.function
        def step():
            return loss_of(forward(x))

    return step


def time_case(
    steps: dict[str, Callable], repeats: int, calls: int, baseline: str = BASELINE
) -> dict:
    """Round-robin timing; ms per call per round, ratios ``baseline`` / variant."""
    for step in steps.values():
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(calls):
                step()
            times[name].append((time.perf_counter() - start) / calls * 1e3)
    base = times[baseline]
    out = {}
    for name, ms in times.items():
        ratios = [b / m for b, m in zip(base, ms)]
        out[name] = {
            "ms": [round(m, 4) for m in ms],
            "ms_median": round(statistics.median(ms), 4),
            "speedup_vs_baseline": {
                "min": round(min(ratios), 3),
                "median": round(statistics.median(ratios), 3),
                "max": round(max(ratios), 3),
            },
        }
    return out


def mixing_cases(tf, num_experts: int, units: int, backward: bool) -> dict:
    rng = tf.random.Generator.from_seed(0)
    experts = rng.normal((BATCH, num_experts, units))
    logits = tf.Variable(rng.normal((BATCH, len(TASKS), num_experts)))

    def per_task(mix):
        def forward(e):
            gates = tf.nn.softmax(logits, axis=-1)
            return {t: mix(gates[:, k], e) for k, t in enumerate(TASKS)}

        return forward

    def all_tasks(e):
        mixed = tf.matmul(tf.nn.softmax(logits, axis=-1), e)
        return {t: mixed[:, k] for k, t in enumerate(TASKS)}

    variants = {
        BASELINE: per_task(lambda g, e: einsum_mix(tf, g, e)),
        "multiply_sum": per_task(lambda g, e: tf.reduce_sum(g[:, :, None] * e, 1)),
        "matmul": per_task(lambda g, e: tf.matmul(g[:, None, :], e)[:, 0]),
        "matmul_all_tasks": all_tasks,
    }
    return {
        name: make_step(tf, f, [logits], experts, backward)
        for name, f in variants.items()
    }


def expert_cases(tf, layers, num_experts: int, units: list[int]) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, INPUT_DIM))
    mlps = [layers.MLP(units, name=f"expert_{i}") for i in range(num_experts)]
    for mlp in mlps:
        mlp.build((None, INPUT_DIM))
    fused = layers.Experts(num_experts, units)
    fused.build((None, INPUT_DIM))
    return {
        BASELINE: make_step(
            tf,
            lambda x: tf.stack([m(x) for m in mlps], axis=1),
            [w for m in mlps for w in m.trainable_weights],
            x,
            True,
        ),
        "experts_layer": make_step(tf, fused, fused.trainable_weights, x, True),
    }


def gate_cases(tf, layers, num_experts: int) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, INPUT_DIM))
    gates = [layers.Gate(num_experts, name=f"gate_{t}") for t in TASKS]
    for gate in gates:
        gate.build((None, INPUT_DIM))
    bank = layers.Experts(len(TASKS), [num_experts], activation="linear")
    bank.build((None, INPUT_DIM))

    def fused(x):
        g = tf.nn.softmax(bank(x), axis=-1)
        return {t: g[:, k] for k, t in enumerate(TASKS)}

    return {
        BASELINE: make_step(
            tf,
            lambda x: {t: g(x) for t, g in zip(TASKS, gates)},
            [w for g in gates for w in g.trainable_weights],
            x,
            True,
        ),
        "one_dense_per_task_softmax": make_step(
            tf, fused, bank.trainable_weights, x, True
        ),
    }


def cgc_group_cases(tf, layers) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, INPUT_DIM))
    m_s, m_t, units = (
        PLE["num_shared_experts"],
        PLE["num_task_experts"],
        PLE["expert_units"],
    )
    groups = [layers.Experts(m_t, units) for _ in TASKS] + [layers.Experts(m_s, units)]
    for g in groups:
        g.build((None, INPUT_DIM))
    stacked = layers.Experts(len(TASKS) * m_t + m_s, units)
    stacked.build((None, INPUT_DIM))
    return {
        BASELINE: expert_cases_baseline_cgc(tf, layers, x, m_s, m_t, units),
        "experts_per_group": make_step(
            tf,
            lambda x: tf.concat([g(x) for g in groups], axis=1),
            [w for g in groups for w in g.trainable_weights],
            x,
            True,
        ),
        "experts_stacked": make_step(tf, stacked, stacked.trainable_weights, x, True),
    }


def expert_cases_baseline_cgc(tf, layers, x, m_s, m_t, units):
    mlps = [layers.MLP(units) for _ in range(len(TASKS) * m_t + m_s)]
    for mlp in mlps:
        mlp.build((None, INPUT_DIM))
    return make_step(
        tf,
        lambda x: tf.stack([m(x) for m in mlps], axis=1),
        [w for m in mlps for w in m.trainable_weights],
        x,
        True,
    )


def layer_cases(tf, layers, kind: str) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, INPUT_DIM))
    if kind == "mmoe":
        base = BaselineMMoE(
            tf, layers, INPUT_DIM, MMOE["num_experts"], MMOE["expert_units"]
        )
        new = layers.MMoE(TASKS, **MMOE)
    else:
        base = BaselinePLE(
            tf,
            layers,
            INPUT_DIM,
            PLE["num_levels"],
            PLE["num_shared_experts"],
            PLE["num_task_experts"],
            PLE["expert_units"],
        )
        new = layers.PLE(TASKS, **PLE)
    new.build((None, INPUT_DIM))
    cases = {
        BASELINE: make_step(tf, base, base.trainable_weights, x, True),
        f"mtrec_{kind}": make_step(tf, new, new.trainable_weights, x, True),
    }
    # The shipped layer with a matmul per expert group and gate (what the
    # gradient weightings trace): the effect of sharing one matmul.
    separate = make_step(tf, new, new.trainable_weights, x, True)
    with layers.separate_matmuls():
        separate.get_concrete_function()  # traced with one matmul per layer
    cases[f"mtrec_{kind}_separate_matmuls"] = separate
    return cases


def speedup_lines(cases: dict) -> list[str]:
    """The markdown table of ``cases`` (``{case: time_case(...)}``)."""
    lines = [
        "| case | variant | ms (median) | speed-up min / median / max |",
        "|---|---|---|---|",
    ]
    for case, variants in cases.items():
        for name, r in variants.items():
            s = r["speedup_vs_baseline"]
            lines.append(
                f"| {case} | {name} | {r['ms_median']:.3f} | "
                f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f} |"
            )
    return lines


def markdown(report: dict) -> str:
    return "\n".join(
        [
            f"Baseline `{BASELINE}`: one MLP per expert, one Gate per task, "
            "`tf.einsum` mixing. Speed-up = baseline ms / variant ms per round; "
            f"{threads_words(report)}",
            "",
            *speedup_lines(report["cases"]),
        ]
    )


def timing_arguments(description: str, out: Path, argv) -> argparse.Namespace:
    """``--repeats``, ``--steps`` (calls per round), ``--threads``, ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50, help="calls per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=out)
    return parser.parse_args(argv)


def time_cases(builders: dict, args, baseline: str = BASELINE) -> dict:
    """``{case: time_case(build(), ...)}``, one case after the other."""
    cases = {}
    for case, build in builders.items():
        logger.info("measuring %s", case)
        cases[case] = time_case(build(), args.repeats, args.steps, baseline)
    return cases


def run_facts(tf, args) -> dict:
    """The settings and the machine's state a report records (the load
    average and Python in ``machine``, ``machine_info.machine``)."""
    return {
        "threads": args.threads,
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "tensorflow": tf.__version__,
        "machine": machine(),
    }


def threads_words(report: dict) -> str:
    """``"N thread(s) on <CPU>."`` for a report's markdown; an older JSON,
    made before the record held the machine, says "CPU not recorded"."""
    return (
        f"{report['threads']} thread(s) on "
        f"{cpu_description(report.get('machine', {}))}."
    )


def main(argv: list[str] | None = None) -> dict:
    args = timing_arguments(__doc__.splitlines()[0], RESULTS, argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tf = import_tf(args.threads)
    tf.keras.utils.set_random_seed(0)
    from mtrec import layers

    n, u = MMOE["num_experts"], MMOE["expert_units"][-1]
    n_ple = PLE["num_shared_experts"] + PLE["num_task_experts"]
    builders = {
        f"mix_forward n={n}": lambda: mixing_cases(tf, n, u, False),
        f"mix_forward_backward n={n}": lambda: mixing_cases(tf, n, u, True),
        f"mix_forward_backward n={n_ple}": lambda: mixing_cases(tf, n_ple, u, True),
        f"experts {n}x[{u}]": lambda: expert_cases(tf, layers, n, [u]),
        f"experts {n}x[64, {u}]": lambda: expert_cases(tf, layers, n, [64, u]),
        f"gates {len(TASKS)}x{n}": lambda: gate_cases(tf, layers, n),
        "cgc_groups 2x2+2 x[32]": lambda: cgc_group_cases(tf, layers),
        "mmoe 8x[32]": lambda: layer_cases(tf, layers, "mmoe"),
        "ple 2 levels 2+2 x[32]": lambda: layer_cases(tf, layers, "ple"),
    }
    report = {
        "baseline": BASELINE,
        "batch": BATCH,
        "input_dim": INPUT_DIM,
        "tasks": TASKS,
        "mmoe": MMOE,
        "ple": PLE,
        **run_facts(tf, args),
        "cases": time_cases(builders, args),
    }
    return write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
