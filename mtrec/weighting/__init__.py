"""Loss-weighting strategies, selectable by name."""

from mtrec.weighting.base import LossWeighting
from mtrec.weighting.fixed import FixedWeighting

#: name -> strategy class; the names used in configs.
WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "fixed": FixedWeighting,
}

__all__ = ["WEIGHTINGS", "FixedWeighting", "LossWeighting"]
