"""Offline evaluation metrics."""

from mtrec.metrics.calibration import calibration_ratio
from mtrec.metrics.calibration import expected_calibration_error
from mtrec.metrics.calibration import reliability_curve
from mtrec.metrics.gauc import group_auc
from mtrec.metrics.ranking import auc
from mtrec.metrics.ranking import binary_report
from mtrec.metrics.ranking import logloss
from mtrec.metrics.ranking import missing_class
from mtrec.metrics.ranking import regression_report

__all__ = [
    "auc",
    "binary_report",
    "calibration_ratio",
    "expected_calibration_error",
    "group_auc",
    "logloss",
    "missing_class",
    "reliability_curve",
    "regression_report",
]
