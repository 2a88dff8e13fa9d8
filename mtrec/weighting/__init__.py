"""Loss-weighting strategies, selectable by name (``weighting: {name: ...}``)."""

import inspect
from collections.abc import Mapping

from mtrec.weighting.base import GradientWeighting
from mtrec.weighting.base import LossWeighting
from mtrec.weighting.dtp import DynamicTaskPrioritization
from mtrec.weighting.dwa import DynamicWeightAverage
from mtrec.weighting.epoch_update import EpochUpdate
from mtrec.weighting.equal import EqualWeighting
from mtrec.weighting.fixed import FixedWeighting
from mtrec.weighting.grad_norm_static import GradNormStatic
from mtrec.weighting.gradnorm import GradNorm
from mtrec.weighting.initial_loss import InitialLossWeighting
from mtrec.weighting.lbtw import LossBalancedTaskWeighting
from mtrec.weighting.pcgrad import PCGrad
from mtrec.weighting.realtime import RealtimeWeighting
from mtrec.weighting.rlw import RandomLossWeighting
from mtrec.weighting.uncertainty import UncertaintyWeighting

#: name -> strategy class; the names used in configs.
WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "fixed": FixedWeighting,
    "equal": EqualWeighting,
    "initial_loss": InitialLossWeighting,
    "realtime": RealtimeWeighting,
    "grad_norm_static": GradNormStatic,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DynamicWeightAverage,
    "lbtw": LossBalancedTaskWeighting,
    "dtp": DynamicTaskPrioritization,
    "pcgrad": PCGrad,
    "rlw": RandomLossWeighting,
}


#: Constructor parameters a strategy gets from the model, not from its args.
_FROM_THE_MODEL = frozenset(
    {"self", "task_names", "task_kinds", "task_weight", "seed", "name"}
)


def weighting_arguments(name: str) -> list[str]:
    """The keyword arguments ``weighting.args`` may give strategy ``name``.

    >>> weighting_arguments("dwa"), weighting_arguments("equal")
    (['temperature'], [])
    """
    parameters = inspect.signature(WEIGHTINGS[name].__init__).parameters.values()
    return sorted(
        p.name
        for p in parameters
        if p.name not in _FROM_THE_MODEL
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    )


def build_weighting(
    name: str, tasks: Mapping, args: Mapping | None = None, seed: int | None = None
) -> LossWeighting:
    """The strategy ``name`` for ``{output: Task}`` with keyword ``args``.

    Raises:
      ValueError: unknown name or bad arguments, naming them.
    """
    if name not in WEIGHTINGS:
        raise ValueError(
            f"unknown loss weighting {name!r}; choose from {sorted(WEIGHTINGS)}"
        )
    valid = weighting_arguments(name)
    unknown = sorted(set(args or {}) - set(valid))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; valid for {name!r}: {valid}")
    try:
        return WEIGHTINGS[name].from_tasks(
            tasks, seed=seed, name=f"weighting_{name}", **dict(args or {})
        )
    except TypeError as err:
        raise ValueError(f"loss weighting {name!r}: {err}") from err


__all__ = [
    "WEIGHTINGS",
    "DynamicTaskPrioritization",
    "DynamicWeightAverage",
    "EpochUpdate",
    "EqualWeighting",
    "FixedWeighting",
    "GradNorm",
    "GradNormStatic",
    "GradientWeighting",
    "InitialLossWeighting",
    "LossBalancedTaskWeighting",
    "LossWeighting",
    "PCGrad",
    "RandomLossWeighting",
    "RealtimeWeighting",
    "UncertaintyWeighting",
    "build_weighting",
    "weighting_arguments",
]
