"""Offline evaluation metrics."""

from mtrec.metrics.ranking import auc
from mtrec.metrics.ranking import binary_report
from mtrec.metrics.ranking import logloss
from mtrec.metrics.ranking import regression_report

__all__ = ["auc", "binary_report", "logloss", "regression_report"]
