"""Score a held-out split and report per-task metrics."""

import functools
import logging

import numpy as np
import tensorflow as tf

from mtrec.metrics.ranking import auc
from mtrec.metrics.ranking import binary_report
from mtrec.metrics.ranking import missing_class
from mtrec.metrics.ranking import regression_report
from mtrec.models.compiled_predict import CompiledForward
from mtrec.models.compiled_predict import compiles_prediction
from mtrec.models.plain_trace import BatchFunction
from mtrec.models.ranker import MultiTaskRanker
from mtrec.progress import progress

logger = logging.getLogger(__name__)


class MissingColumnError(ValueError):
    """A column the evaluation needs is not in the batches."""


class Predictor:
    """``batch -> {output: (batch,)}`` of one model, traced once for any batch
    size (as plain Python, ``mtrec.models.plain_trace.PlainFirst``) and reused
    by every evaluation that is given it (each epoch's selection, the final
    evaluation); it lives as long as its owner keeps it.

    Only the model's inputs (its feature layer's ``feature_set.names``, when
    it declares them) reach the traced function: labels and other columns,
    and a last partial batch, would each trace it again.

    A model with ``predict_jit_compile`` runs compiled by XLA, its input
    checks kept (:class:`mtrec.models.compiled_predict.CompiledForward`),
    by the rule its ``predict`` follows (``compiles_prediction``: not for a
    model made under a distribution strategy); XLA compiles once per power
    of two of the batch size, the batch padded to it (``compiled`` is
    ``True``).

    Args:
      model: the model to run (``training=False``).
    """

    def __init__(self, model: MultiTaskRanker):
        self.model = model
        self._names = _input_names(model)
        self.compiled = compiles_prediction(model)
        if self.compiled:
            forward = CompiledForward(model)
        else:
            forward = functools.partial(model, training=False)

        def predict(batch):
            outputs = forward(batch)
            return {k: tf.reshape(v, [-1]) for k, v in outputs.items()}

        self.step = BatchFunction(predict, "predict")

    def __call__(self, batch: dict) -> dict[str, tf.Tensor]:
        return self.step(_model_inputs(self._names, batch))


def _input_names(model: MultiTaskRanker) -> list[str] | None:
    """The feature layer's input names, when it declares them."""
    feature_set = getattr(model.feature_layer, "feature_set", None)
    return getattr(feature_set, "names", None)


def _model_inputs(names: list[str] | None, batch: dict) -> dict:
    """The columns of ``batch`` named in ``names`` (all of them: ``None``)."""
    names = batch if names is None else names
    return {name: batch[name] for name in names if name in batch}


def predict_dataset(
    model: MultiTaskRanker,
    dataset: tf.data.Dataset,
    keep: list[str],
    predictor: Predictor | None = None,
) -> dict[str, np.ndarray]:
    """Runs the model over a dataset: every output and the ``keep`` columns.

    ``predictor``: reuse its traced function (default: a new one, traced now).

    Returns:
      ``{output: predictions}`` plus ``{column: values}`` for the kept columns;
      a kept column named like an output is returned as ``"column:<name>"``.
    """

    step = predictor or Predictor(model)
    collected: dict[str, list] = {}
    for batch in progress(dataset, "scoring", unit="batch"):
        for name, value in step(batch).items():
            collected.setdefault(name, []).append(value.numpy())
        outputs = set(model.prediction_names)
        for name in keep:
            if name in batch:
                key = f"column:{name}" if name in outputs else name
                collected.setdefault(key, []).append(batch[name].numpy())
    return {k: np.concatenate(v) for k, v in collected.items()}


def evaluate_model(
    model: MultiTaskRanker,
    dataset: tf.data.Dataset,
    oracle: dict | None = None,
    group: str | None = None,
    predictor: Predictor | None = None,
) -> dict:
    """Per-output metrics on the rows each output is defined on.

    For each of ``model.evaluation_targets()``, restricted to rows where the
    target's condition column is 1: for binary targets AUC, log loss,
    calibration (``mean(p) / mean(y)``) and the expected calibration error
    over 10 bins (``ece``), see ``mtrec.metrics.binary_report``; RMSE/MAE for
    regression. With ``oracle = {output: column}`` also the oracle AUC of the
    true probabilities on the same rows: the ceiling any model can reach.
    With ``group`` (a column such as ``user_id``) also the group AUC
    (``gauc``, ``gauc_mean``, ``gauc_groups``). ``predictor``: reuse its
    traced function (:class:`Predictor`) across evaluations of one model.

    Raises:
      MissingColumnError: ``group`` is not a column of the batches.
    """
    oracle = dict(oracle or {})
    targets = model.evaluation_targets()
    keep = sorted(
        {t.label for t in targets}
        | {t.condition for t in targets if t.condition}
        | set(oracle.values())
        | ({group} if group else set())
    )
    data = predict_dataset(model, dataset, keep, predictor)

    def column(name: str) -> np.ndarray:
        return data.get(f"column:{name}", data.get(name))

    if group and column(group) is None:
        raise MissingColumnError(
            f"the group column {group!r} is not in the evaluation data"
        )
    report = {}
    for target in targets:
        mask = column(target.condition) > 0.5 if target.condition else slice(None)
        labels, preds = column(target.label)[mask], data[target.output][mask]
        if target.kind == "binary":
            groups = column(group)[mask] if group else None
            entry = binary_report(labels, preds, groups=groups)
            truth = oracle.get(target.output)
            if truth is not None and column(truth) is not None:
                entry["oracle_auc"] = auc(labels, column(truth)[mask])
            if entry["auc"] is None:
                entry["auc_undefined"] = auc_undefined_reason(
                    target.label, target.condition, entry["rows"], entry["positives"]
                )
                logger.warning("output %r: %s", target.output, entry["auc_undefined"])
        else:
            entry = regression_report(labels, preds)
        entry["label"] = target.label
        entry["condition"] = target.condition
        report[target.output] = entry
    return report


def auc_undefined_reason(
    label: str, condition: str | None, rows: int, positives: int
) -> str:
    """Why a binary target's AUC is undefined: no rows, or one class only.

    Example:

    >>> auc_undefined_reason("conversion", "click", 90, 0)
    "AUC undefined: label 'conversion' has no positives in the 90 rows where click=1"
    """
    return f"AUC undefined: {missing_class(label, condition, rows, positives)}"


def selection_score(report: dict, terms: dict[str, float]) -> float:
    """``Σ weight · report[output][metric]`` over ``{"output.metric": weight}``.

    Raises:
      ValueError: an unknown output or metric, or a metric that is undefined
        (e.g. an AUC on rows of one class).
    """
    score = 0.0
    for key, weight in terms.items():
        output, metric = key.split(".")
        if output not in report or metric not in report[output]:
            available = sorted(
                f"{o}.{m}"
                for o, entry in report.items()
                for m, v in entry.items()
                if isinstance(v, float)
            )
            raise ValueError(
                f"{key!r} is not in the evaluation report; available: {available}"
            )
        value = report[output][metric]
        if value is None:
            raise ValueError(
                f"{key!r} is undefined on the held-out rows (e.g. an AUC where "
                "one class is missing)"
            )
        score += float(weight) * float(value)
    return score


def gate_report(model: MultiTaskRanker, dataset: tf.data.Dataset) -> dict:
    """Which experts each task uses: gate statistics over a dataset.

    For every gate ``g`` of the backbone (one per task; PLE also reports its
    inner levels and shared gates) with weights ``w_{n,i}`` for row ``n`` and
    expert ``i``: ``mean_weight_i = mean_n w_{n,i}``, ``entropy = mean_n
    (-Σ_i w_{n,i} ln w_{n,i})`` (0: one expert per row; ``ln(num_experts)``:
    uniform), ``max_entropy = ln(num_experts)``.
    """

    def gate_sums(batch):
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
    step = BatchFunction(gate_sums, "gate report")
    names = _input_names(model)
    for batch in dataset:
        for name, (weights, entropy, rows) in step(_model_inputs(names, batch)).items():
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
