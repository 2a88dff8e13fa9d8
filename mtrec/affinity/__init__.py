"""Which tasks belong together: task affinity and task grouping (TAG)."""

from mtrec.affinity.grouping import MAX_TASKS
from mtrec.affinity.grouping import GroupingResult
from mtrec.affinity.grouping import choose_groups

__all__ = [
    "MAX_TASKS",
    "GroupingResult",
    "choose_groups",
]
