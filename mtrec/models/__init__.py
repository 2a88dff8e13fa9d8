"""Tasks and multi-task ranking models."""

from mtrec.models.backbones import GatedBackbone
from mtrec.models.esmm import ESMM
from mtrec.models.esmm import esmm_supervised_tasks
from mtrec.models.ranker import MultiTaskRanker
from mtrec.models.task import EvalTarget
from mtrec.models.task import Task

__all__ = [
    "ESMM",
    "EvalTarget",
    "GatedBackbone",
    "MultiTaskRanker",
    "Task",
    "esmm_supervised_tasks",
]
