"""Which tasks belong together: task affinity (TAG), grouping, the MTL gain.

``AffinityTracker`` measures inter-task affinity during training
(``train.affinity_every_steps``), ``choose_groups`` picks task groups from the
matrix, and ``compare`` (``mtrec compare``) reports the MTL gain of a
multi-task model over single-task ones. ``compare`` and its helpers load on
first use: they train through ``mtrec.training``, which itself uses the
tracker.
"""

import importlib

from mtrec.affinity.grouping import MAX_TASKS
from mtrec.affinity.grouping import GroupingResult
from mtrec.affinity.grouping import choose_groups
from mtrec.affinity.plot import affinity_heatmap
from mtrec.affinity.tracking import AffinityTracker
from mtrec.affinity.tracking import affinity_from_history
from mtrec.affinity.tracking import gradient_cosines

# Loaded on first use (PEP 562): mtrec.affinity.gain imports mtrec.training.
_GAIN = ("compare", "gain_report", "gain_table", "single_task_config")

__all__ = [
    "MAX_TASKS",
    "AffinityTracker",
    "GroupingResult",
    "affinity_from_history",
    "affinity_heatmap",
    "choose_groups",
    "compare",
    "gain_report",
    "gain_table",
    "gradient_cosines",
    "single_task_config",
]


def __getattr__(name: str):
    if name in _GAIN:
        return getattr(importlib.import_module("mtrec.affinity.gain"), name)
    raise AttributeError(f"module 'mtrec.affinity' has no attribute {name!r}")
