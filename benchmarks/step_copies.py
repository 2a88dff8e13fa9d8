"""Copies in the training step: each change of this kind against what it replaced.

Issue 11 (item 3): after the matmuls, a census training step spends its time
moving data. Each case times one change against the code it replaced (the
**baseline** of the case), forward and backward where there is a gradient, on
one thread, interleaved rounds (``expert_mixing.time_case``):

- ``one_hot_indices``: the ``(n, 2)`` int64 indices of the dense-gradient
  gather's sparse one-hot (``gather_with_dense_gradient``), for a census batch
  (31 features x 1024 rows): ``tf.stack([range, ids], axis=1)`` (baseline)
  against ``mtrec.features.int64_pairs``;
- ``id_columns``: 31 id vectors of 1024 as a ``(1024, 31)`` matrix
  (``FeatureEmbedding``): ``tf.stack(axis=1)`` (baseline) against stacking as
  rows and transposing;
- ``esmm_towers``: ESMM's two towers [64, 16] over the same 263 inputs: a
  matmul each (baseline, ``separate_matmuls``) against their first layers in
  one matmul (``mtrec.layers.apply_layers`` on ``Tower`` s);
- ``cgc_task_mix``: a CGC task gate over its 2 own and 2 shared experts of 32
  units: ``mix_experts`` of the concatenated groups (baseline) against
  ``mix_expert_groups``;
- ``embedding_order``: ``FeatureEmbedding`` over the 38 census inputs in
  file order (31 encoded categorical of width 8, 7 dense between them),
  forward and the tables' gradient: ``output_order="features"`` (baseline,
  the block split around every dense feature) against ``"grouped"``;
- ``gate_softmax``: the three gates of a PLE level (2 tasks over 2 own + 2
  shared experts, the shared gate over all 6), forward and backward:
  ``tf.nn.softmax`` (baseline, oneDNN's kernel) against
  ``mtrec.layers.gate_softmax``;
- ``dense_block``: the 7 census dense inputs of a batch (4 with log1p), each
  checked, clipped and z-scored: the steps per feature, each with its own
  check, and a concat (baseline, ``FeatureEmbedding`` before) against
  ``mtrec.features.dense_block`` (one chain for all, one check).
- ``int32_ids``: 31 int32 id vectors of 1024 (in-memory columns) as the
  ``(1024, 31)`` matrix the gather reads: a cast per column to int64, then
  the stack (baseline, ``FeatureEmbedding`` when it first took int32 ids)
  against the int32 stack cast once to int64 (``cast_once``, ``stack_ids``
  until the gather took int32 ids), ``mtrec.features.stack_ids`` (the
  int32 matrix, no cast), and the same ids given as int64 (no cast);
- ``id_range_check``: whether every id of a ``(1024, 31)`` int64 matrix is
  in ``[0, V_j)`` (``checked_ids``): ``ids >= 0``, ``ids < V`` and their
  ``and`` (baseline) against one unsigned comparison
  (``mtrec.features.ids_in_range``);
- ``dense_buckets``: the 7 census dense inputs with their values and their
  quantile buckets (``keep_value``, up to 64 buckets): ``dense_value`` and a
  ``Discretization`` per feature beside ``dense_block`` (baseline,
  ``FeatureEmbedding`` when ``keep_value`` came) against ``dense_columns``
  once, then ``mtrec.features.bucket_columns`` and ``zscored``;
- ``cgc_gate_matrix_train`` and ``cgc_gate_matrix_predict``: the three gates
  of a PLE level (2 tasks over 2 own + 2 shared experts of 32 units, the
  shared gate over all 6) mixing their experts, with and without the
  backward pass: ``mix_expert_groups`` per gate (baseline, ``CGC`` before)
  against ``mtrec.layers.mix_gates_over_groups`` (one gate matrix, one
  batched matmul).
- ``ple_padded_matmul_train`` and ``ple_padded_matmul_predict``: a census
  PLE (2 levels of 2 shared + 2 per-task experts of 32 units, 2 tasks) on
  the 255 census inputs, with and without the backward pass: the first
  level's shared matmul of 206 columns as it is (baseline) against padded
  with zero columns to 208, a multiple of 16
  (``mtrec.layers.matmul_layout``' ``column_multiple``). The second level's
  layers, on 32 inputs, keep a matmul each in both (``min_shared_input``;
  in ``46011fc`` its task matmuls were shared, 68 columns, and padded to
  80 in ``180b7d7``).
- ``shared_matmul_train`` and ``shared_matmul_predict`` on 32, 64 and 255
  inputs: a PLE task's second-level layers (2 experts of 32 units and a
  gate of 4 weights) on one input: one shared matmul, split, then the
  experts' activation (baseline) against a matmul each (``apply_layers``
  inside ``separate_matmuls``; ``matmul_layout``' ``min_shared_input``,
  64 by default, draws the line).

Writes ``benchmarks/results/step_copies.json`` and prints a markdown table.

    taskset -c 0 python benchmarks/step_copies.py [--repeats 7] [--steps 50]
"""

import logging
from pathlib import Path

import expert_mixing
from click_log_runs import write_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "step_copies.json"
BASELINE = "before"
BATCH = 1024
FEATURES = 31
EMBEDDING_INPUTS = 263  # census ESMM: 31 x 8 embeddings + 7 dense + 8 more
PLE_INPUTS = 255  # census PLE: 31 x 8 embeddings + 7 dense
CENSUS_IDS = 52  # the largest census vocabulary
DENSE = 7  # census dense inputs
DENSE_LOG1P = 4  # of them heavy-tailed (capital gains and losses, ...)
logger = logging.getLogger("step_copies")


def _int_step(tf, build):
    """A ``tf.function`` summing ``build()``'s result (nothing folds away)."""

    @tf.function
    def step():
        return tf.reduce_sum(build())

    return step


def index_cases(tf) -> dict:
    from mtrec.features import int64_pairs

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


def int32_id_cases(tf) -> dict:
    from mtrec.features import stack_ids

    rng = tf.random.Generator.from_seed(0)
    ids = [rng.uniform((BATCH,), 0, CENSUS_IDS, tf.int64) for _ in range(FEATURES)]
    narrow = [tf.cast(column, tf.int32) for column in ids]
    return {
        BASELINE: _int_step(
            tf,
            lambda: tf.transpose(tf.stack([tf.cast(c, tf.int64) for c in narrow])),
        ),
        "cast_once": _int_step(tf, lambda: tf.cast(stack_ids(narrow), tf.int64)),
        "stack_ids": _int_step(tf, lambda: stack_ids(narrow)),
        "int64_given": _int_step(tf, lambda: stack_ids(ids)),
    }


def range_check_cases(tf) -> dict:
    from mtrec.features import ids_in_range

    rng = tf.random.Generator.from_seed(0)
    ids = rng.uniform((BATCH, FEATURES), 0, CENSUS_IDS, tf.int64)
    rows = [CENSUS_IDS] * FEATURES

    def both_bounds():
        upper = tf.constant(rows, tf.int64)
        return tf.cast(tf.reduce_all(tf.logical_and(ids >= 0, ids < upper)), tf.int64)

    def unsigned():
        return tf.cast(tf.reduce_all(ids_in_range(ids, rows)), tf.int64)

    return {
        BASELINE: _int_step(tf, both_bounds),
        "unsigned_compare": _int_step(tf, unsigned),
    }


def dense_cases(tf) -> dict:
    """The census's 7 dense inputs (4 with log1p, all z-scored and clipped)
    of one batch as ``(batch, 7)``: the same steps per feature, each with its
    own finite check, concatenated (baseline, ``FeatureEmbedding`` before),
    against ``dense_block``."""
    from mtrec.features import DenseFeature
    from mtrec.features import checked_finite_columns
    from mtrec.features import dense_block

    specs = [DenseFeature(f"d{j}", log1p=j < DENSE_LOG1P) for j in range(DENSE)]
    stats = {
        s.name: {"mean": 0.5, "std": 2.0, "min": -30.0, "max": 30.0} for s in specs
    }
    rng = tf.random.Generator.from_seed(0)
    raws = [rng.normal((BATCH,), stddev=10.0) for _ in specs]

    def one_at_a_time():
        columns = []
        for spec, raw in zip(specs, raws, strict=True):
            x = checked_finite_columns([(spec.name, raw, False)])[0]
            if spec.log1p:
                x = tf.sign(x) * tf.math.log1p(tf.abs(x))
            x = tf.clip_by_value(x, stats[spec.name]["min"], stats[spec.name]["max"])
            x = (x - stats[spec.name]["mean"]) / stats[spec.name]["std"]
            columns.append(x[:, None])
        return tf.concat(columns, axis=1)

    return {
        BASELINE: _int_step(tf, one_at_a_time),
        "dense_block": _int_step(tf, lambda: dense_block(specs, raws, stats)),
    }


def bucket_cases(tf) -> dict:
    """The census's 7 dense inputs as ``census_features`` gives them by
    default (z-score and quantile bucket, ``keep_value``; 64 buckets at most)
    of one batch: each feature's bucket id and the ``(batch, 7)`` values. The
    code before: ``dense_value`` and a ``Discretization`` per feature beside
    ``dense_block`` (baseline); the layer's now: ``dense_columns`` once, then
    ``bucket_columns`` and ``zscored`` from it."""
    from mtrec.features import DenseFeature
    from mtrec.features import bucket_columns
    from mtrec.features import dense_block
    from mtrec.features import dense_columns
    from mtrec.features import dense_value
    from mtrec.features import zscored

    specs = [
        DenseFeature(f"d{j}", log1p=j < DENSE_LOG1P, num_buckets=64, keep_value=True)
        for j in range(DENSE)
    ]
    rng = tf.random.Generator.from_seed(0)
    raws = [rng.normal((BATCH,), stddev=10.0) for _ in specs]
    sizes = [63 - 8 * j for j in range(DENSE)]  # 63 down to 15 boundaries
    bounds = [[-3.0 + 6.0 * i / (n - 1) for i in range(n)] for n in sizes]
    stats = {
        s.name: {"mean": 0.5, "std": 2.0, "min": -30.0, "max": 30.0, "boundaries": b}
        for s, b in zip(specs, bounds, strict=True)
    }
    discretizers = [tf.keras.layers.Discretization(bin_boundaries=b) for b in bounds]

    def per_feature():
        ids = [
            d(dense_value(spec, raw, stats[spec.name]))
            for spec, raw, d in zip(specs, raws, discretizers, strict=True)
        ]
        values = dense_block(specs, raws, stats)
        return tf.reduce_sum(tf.stack(ids)) + tf.cast(tf.reduce_sum(values), tf.int64)

    def once():
        columns = dense_columns(specs, raws, stats)
        ids = tf.unstack(bucket_columns(columns, bounds))
        values = zscored(specs, columns, stats)
        return tf.reduce_sum(tf.stack(ids)) + tf.cast(tf.reduce_sum(values), tf.int64)

    return {
        BASELINE: _int_step(tf, per_feature),
        "dense_columns_once": _int_step(tf, once),
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


def mix_cases(tf, layers) -> dict:
    rng = tf.random.Generator.from_seed(0)
    own = tf.Variable(rng.normal((BATCH, 2, 32)))
    shared = tf.Variable(rng.normal((BATCH, 2, 32)))
    gates = tf.nn.softmax(rng.normal((BATCH, 4)))

    def concatenated(g):
        return layers.mix_experts(g, tf.concat([own, shared], axis=1))

    def grouped(g):
        return layers.mix_expert_groups(g, [own, shared])

    return {
        BASELINE: expert_mixing.make_step(tf, concatenated, [own, shared], gates, True),
        "mix_expert_groups": expert_mixing.make_step(
            tf, grouped, [own, shared], gates, True
        ),
    }


def gate_matrix_cases(tf, layers, backward: bool) -> dict:
    rng = tf.random.Generator.from_seed(0)
    groups = [tf.Variable(rng.normal((BATCH, 2, 32))) for _ in range(3)]
    widths = [4, 4, 6]  # task a over (a, shared), b over (b, shared), shared
    members = [[0, 2], [1, 2], [0, 1, 2]]
    logits = rng.normal((BATCH, sum(widths)))

    def gates(x):
        return [layers.gate_softmax(part) for part in tf.split(x, widths, axis=1)]

    def per_gate(x):
        return {
            f"g{k}": layers.mix_expert_groups(g, [groups[j] for j in chosen])
            for k, (g, chosen) in enumerate(zip(gates(x), members, strict=True))
        }

    def gate_matrix(x):
        mixed = layers.mix_gates_over_groups(gates(x), members, groups)
        return {f"g{k}": m for k, m in enumerate(mixed)}

    return {
        BASELINE: expert_mixing.make_step(tf, per_gate, groups, logits, backward),
        "mix_gates_over_groups": expert_mixing.make_step(
            tf, gate_matrix, groups, logits, backward
        ),
    }


def padding_cases(tf, layers, backward: bool) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, PLE_INPUTS))
    ple = layers.PLE(
        ["a", "b"],
        num_levels=2,
        num_shared_experts=2,
        num_task_experts=2,
        expert_units=[32],
    )
    ple.build((None, PLE_INPUTS))

    def forward(multiple: int):
        def call(x):
            # Read while the step is traced: this variant's padding.
            with layers.matmul_layout(column_multiple=multiple):
                return ple(x)

        return call

    weights = ple.trainable_weights
    return {
        BASELINE: expert_mixing.make_step(tf, forward(1), weights, x, backward),
        "padded_to_16": expert_mixing.make_step(tf, forward(16), weights, x, backward),
    }


def sharing_cases(tf, layers, width: int, backward: bool) -> dict:
    x = tf.random.Generator.from_seed(0).normal((BATCH, width))
    task = [layers.Experts(2, [32]), layers.Gate(4)]
    for layer in task:
        layer(x)

    def forward(separate: bool):
        def call(x):
            # Read while the step is traced: this variant's way, whatever
            # the width.
            with layers.matmul_layout(min_shared_input=1):
                if separate:
                    with layers.separate_matmuls():
                        outputs = layers.apply_layers([(x, layer) for layer in task])
                else:
                    outputs = layers.apply_layers([(x, layer) for layer in task])
            return {f"y{i}": y for i, y in enumerate(outputs)}

        return call

    weights = [w for layer in task for w in layer.trainable_weights]
    return {
        BASELINE: expert_mixing.make_step(tf, forward(False), weights, x, backward),
        "own_matmuls": expert_mixing.make_step(tf, forward(True), weights, x, backward),
    }


def softmax_cases(tf, layers) -> dict:
    widths = [4, 4, 6]
    logits = tf.random.Generator.from_seed(0).normal((BATCH, sum(widths)))

    def gates(softmax):
        def forward(x):
            parts = tf.split(x, widths, axis=1)
            return {f"g{i}": softmax(part) for i, part in enumerate(parts)}

        return forward

    return {
        BASELINE: expert_mixing.make_step(tf, gates(tf.nn.softmax), [], logits, True),
        "gate_softmax": expert_mixing.make_step(
            tf, gates(layers.gate_softmax), [], logits, True
        ),
    }


def order_cases(tf) -> dict:
    from mtrec.data import census_features
    from mtrec.features import FeatureEmbedding

    features, stats = [], {}
    for spec in census_features(embedding_dim=8, numeric="value"):
        name = spec["name"]
        if spec["kind"] == "dense":
            features.append({"name": name, "kind": "dense", "normalization": "none"})
            stats[name] = {"mean": 0.0, "std": 1.0, "boundaries": None}
        else:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "dtype": "int64",
                    "num_ids": CENSUS_IDS,
                    "embedding_dim": 8,
                }
            )
    rng = tf.random.Generator.from_seed(0)
    batch = {
        f["name"]: rng.uniform((BATCH,), 0, CENSUS_IDS, tf.int64)
        if f["kind"] == "categorical"
        else rng.normal((BATCH,))
        for f in features
    }
    steps = {}
    for variant, order in ((BASELINE, "features"), ("grouped", "grouped")):
        layer = FeatureEmbedding(features, dense_stats=stats, output_order=order)
        target = rng.normal((BATCH, layer.output_dim))
        steps[variant] = _table_gradient_step(tf, layer, batch, target)
    return steps


def _table_gradient_step(tf, layer, batch: dict, target):
    """A ``tf.function``: ``sum(layer(batch) * target)`` and the tables' gradient."""
    layer(batch)  # builds the tables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(batch) * target)
        return tape.gradient(loss, layer.trainable_weights)

    return step


def markdown(report: dict) -> str:
    return "\n".join(
        [
            "Each case's baseline `before` is the code the change replaced. "
            "Speed-up = baseline ms / variant ms per round; "
            f"{expert_mixing.threads_words(report)}",
            "",
            *expert_mixing.speedup_lines(report["cases"]),
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    args = expert_mixing.timing_arguments(__doc__.splitlines()[0], RESULTS, argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tf = expert_mixing.import_tf(args.threads)
    tf.keras.utils.set_random_seed(0)
    from mtrec import layers

    builders = {
        f"one_hot_indices n={BATCH * FEATURES}": lambda: index_cases(tf),
        f"id_columns {FEATURES}x{BATCH}": lambda: column_cases(tf),
        f"esmm_towers 2x[64, 16] on {EMBEDDING_INPUTS}": lambda: tower_cases(
            tf, layers
        ),
        "cgc_task_mix 2+2 x[32]": lambda: mix_cases(tf, layers),
        "embedding_order census 31+7": lambda: order_cases(tf),
        "gate_softmax 4+4+6": lambda: softmax_cases(tf, layers),
        f"dense_block {DENSE} census dense inputs": lambda: dense_cases(tf),
        f"int32_ids {FEATURES}x{BATCH}": lambda: int32_id_cases(tf),
        f"id_range_check {BATCH}x{FEATURES}": lambda: range_check_cases(tf),
        f"dense_buckets {DENSE} census dense inputs": lambda: bucket_cases(tf),
        "cgc_gate_matrix_train 2+2+2 x[32]": lambda: gate_matrix_cases(
            tf, layers, True
        ),
        "cgc_gate_matrix_predict 2+2+2 x[32]": lambda: gate_matrix_cases(
            tf, layers, False
        ),
        f"ple_padded_matmul_train on {PLE_INPUTS}": lambda: padding_cases(
            tf, layers, True
        ),
        f"ple_padded_matmul_predict on {PLE_INPUTS}": lambda: padding_cases(
            tf, layers, False
        ),
    }
    for width in (32, 64, PLE_INPUTS):
        for mode, backward in (("train", True), ("predict", False)):
            builders[f"shared_matmul_{mode} on {width}"] = (
                lambda width=width, backward=backward: sharing_cases(
                    tf, layers, width, backward
                )
            )
    report = {
        "baseline": BASELINE,
        "batch": BATCH,
        **expert_mixing.run_facts(tf, args),
        "cases": expert_mixing.time_cases(builders, args, baseline=BASELINE),
    }
    return write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
