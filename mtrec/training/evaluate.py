"""Score a held-out split and report per-task metrics."""

import logging

import numpy as np
import tensorflow as tf

from mtrec.metrics.ranking import auc
from mtrec.metrics.ranking import binary_report
from mtrec.metrics.ranking import regression_report
from mtrec.models.ranker import MultiTaskRanker

logger = logging.getLogger(__name__)


def predict_dataset(
    model: MultiTaskRanker, dataset: tf.data.Dataset, keep: list[str]
) -> dict[str, np.ndarray]:
    """Runs the model over a dataset; returns every output and the ``keep`` columns."""

    @tf.function
    def step(batch):
        return {k: tf.reshape(v, [-1]) for k, v in model(batch, training=False).items()}

    collected: dict[str, list] = {}
    for batch in dataset:
        for name, value in step(batch).items():
            collected.setdefault(name, []).append(value.numpy())
        for name in keep:
            if name in batch:
                collected.setdefault(name, []).append(batch[name].numpy())
    return {k: np.concatenate(v) for k, v in collected.items()}


def evaluate_model(
    model: MultiTaskRanker, dataset: tf.data.Dataset, oracle: dict | None = None
) -> dict:
    """Per-output metrics on the rows each output is defined on.

    For each of ``model.evaluation_targets()``: AUC, log loss and calibration
    against its label (binary) or RMSE/MAE (regression), restricted to rows
    where the target's condition column is 1. With ``oracle = {output: column}``
    also the oracle AUC of the true probabilities on the same rows: the
    ceiling any model can reach.
    """
    oracle = dict(oracle or {})
    targets = model.evaluation_targets()
    keep = sorted(
        {t.label for t in targets}
        | {t.condition for t in targets if t.condition}
        | set(oracle.values())
    )
    data = predict_dataset(model, dataset, keep)
    report = {}
    for target in targets:
        mask = data[target.condition] > 0.5 if target.condition else slice(None)
        labels, preds = data[target.label][mask], data[target.output][mask]
        if target.kind == "binary":
            entry = binary_report(labels, preds)
            column = oracle.get(target.output)
            if column is not None and column in data:
                entry["oracle_auc"] = auc(labels, data[column][mask])
        else:
            entry = regression_report(labels, preds)
        entry["label"] = target.label
        entry["condition"] = target.condition
        report[target.output] = entry
    return report


def gate_report(model: MultiTaskRanker, dataset: tf.data.Dataset) -> dict:
    """Which experts each task uses: gate statistics over a dataset.

    For every gate ``g`` of the backbone (one per task; PLE also reports its
    inner levels and shared gates) with weights ``w_{n,i}`` for row ``n`` and
    expert ``i``: ``mean_weight_i = mean_n w_{n,i}``, ``entropy = mean_n
    (-Σ_i w_{n,i} ln w_{n,i})`` (0: one expert per row; ``ln(num_experts)``:
    uniform), ``max_entropy = ln(num_experts)``.
    """

    @tf.function
    def step(batch):
        gates = model.gate_weights(batch, training=False)
        return {
            name: (
                tf.reduce_sum(w, axis=0),
                tf.reduce_sum(
                    -tf.reduce_sum(w * tf.math.log(tf.maximum(w, 1e-12)), axis=-1)
                ),
                tf.shape(w)[0],
            )
            for name, w in gates.items()
        }

    sums: dict[str, list] = {}
    for batch in dataset:
        for name, (weights, entropy, rows) in step(batch).items():
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] = acc[0] + weights.numpy().astype(np.float64)
            acc[1] += float(entropy)
            acc[2] += int(rows)
    report = {}
    for name, (weights, entropy, rows) in sums.items():
        report[name] = {
            "mean_weight": [float(w) for w in weights / rows],
            "entropy": entropy / rows,
            "max_entropy": float(np.log(len(weights))),
            "rows": rows,
        }
    return report
