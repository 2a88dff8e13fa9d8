"""Inference in bfloat16 on a CPU with AMX: is it the lever for issue 11?

An MMoE-shaped dense network (8 experts of [512, 256] over 39 x 8 inputs, two
gates and towers) predicts a batch under Keras' ``float32`` and
``mixed_bfloat16`` policies, each in its own process (a policy is global),
one thread, alternating policies round by round. The baseline is ``float32``;
the ratio is bf16 rows/s over float32 rows/s per round. The outputs of the
two policies are compared on the same weights (the largest absolute
difference of the probabilities).

Run from ``benchmarks/``::

    python bf16_inference.py --repeats 5 --batch 1024

Writes ``results/bf16_inference.json`` and prints a Markdown table. This is
a probe of the dense compute only (no embedding lookups, no mtrec layers).
"""

import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
POLICIES = ("float32", "mixed_bfloat16")

CHILD = r"""
import os, sys, time, json
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
policy, batch, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.keras.utils.set_random_seed(0)
tf.keras.mixed_precision.set_global_policy(policy)
inp = tf.keras.Input((39 * 8,))
experts = [
    tf.keras.layers.Dense(256, "relu")(tf.keras.layers.Dense(512, "relu")(inp))
    for _ in range(8)
]
stack = tf.cast(tf.stack(experts, 1), tf.float32)
outs = []
for _ in range(2):
    gate = tf.keras.layers.Dense(8, activation="softmax", dtype="float32")(inp)
    mixed = tf.reduce_sum(stack * gate[:, :, None], 1)
    hidden = tf.keras.layers.Dense(64, "relu")(mixed)
    outs.append(tf.keras.layers.Dense(1, "sigmoid", dtype="float32")(hidden))
model = tf.keras.Model(inp, outs)
x = np.random.default_rng(1).random((batch, 39 * 8)).astype("float32")
predict = tf.function(lambda v: model(v, training=False))
first = np.concatenate([o.numpy() for o in predict(x)], 1)
start, rows = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    predict(x)
    rows += batch
print(json.dumps({"rows_per_s": rows / (time.perf_counter() - start),
                  "outputs": first[:256].tolist()}))
"""


def measure(policy: str, batch: int, seconds: float) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, policy, str(batch), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", default=str(HERE / "results" / "bf16_inference.json"))
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.batch < 1 or args.seconds <= 0:
        raise SystemExit("Need --repeats >= 1, --batch >= 1 and --seconds > 0.")
    rounds = []
    for r in range(args.repeats):
        order = POLICIES if r % 2 == 0 else POLICIES[::-1]
        rounds.append({p: measure(p, args.batch, args.seconds) for p in order})
    ratios = [
        rd["mixed_bfloat16"]["rows_per_s"] / rd["float32"]["rows_per_s"]
        for rd in rounds
    ]
    diff = max(
        float(
            np.max(
                np.abs(
                    np.array(rd["mixed_bfloat16"]["outputs"])
                    - np.array(rd["float32"]["outputs"])
                )
            )
        )
        for rd in rounds
    )
    report = {
        "batch": args.batch,
        "threads": 1,
        "rows_per_s": {p: [rd[p]["rows_per_s"] for rd in rounds] for p in POLICIES},
        "ratio_bf16_over_float32": {
            "min": min(ratios),
            "median": float(np.median(ratios)),
            "max": max(ratios),
        },
        "max_abs_probability_difference": diff,
    }
    pathlib.Path(args.out).write_text(json.dumps(report, indent=2))
    med = {p: float(np.median(v)) for p, v in report["rows_per_s"].items()}
    r = report["ratio_bf16_over_float32"]
    print("| policy | rows/s (median) | ratio to float32 (min / median / max) |")
    print("|---|---|---|")
    print(f"| float32 | {med['float32']:,.0f} | 1 |")
    print(
        f"| mixed_bfloat16 | {med['mixed_bfloat16']:,.0f} | "
        f"{r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f} |"
    )
    print(f"largest |Δp| between the policies: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
