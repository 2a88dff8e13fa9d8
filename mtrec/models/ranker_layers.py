"""The layers a ranker builds around its backbone: DCN-v2 crosses, towers."""

from collections.abc import Sequence

import tensorflow_recommenders as tfrs

from mtrec.layers import Tower
from mtrec.models.task import Task


def cross_stack(count: int, projection_dim: int | None) -> list:
    """``count`` DCN-v2 cross layers (``tfrs.layers.dcn.Cross``), validated.

    Raises:
      ValueError: ``count`` not an int >= 0, or ``projection_dim`` < 1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(
            "`cross_layers` must be an integer >= 0. "
            f"Received: `cross_layers={count!r}`"
        )
    if projection_dim is not None and projection_dim < 1:
        raise ValueError(
            "`cross_projection_dim` must be >= 1 or None. Received: "
            f"`cross_projection_dim={projection_dim!r}`"
        )
    return [
        tfrs.layers.dcn.Cross(projection_dim=projection_dim, name=f"cross_{i}")
        for i in range(count)
    ]


def tower_layers(
    tasks: Sequence[Task],
    units: Sequence[int],
    activation: str,
    dropout: float,
    l2: float,
) -> dict[str, Tower]:
    """``{task name: Tower(name="tower_<task name>")}``, one tower per task,
    in the tasks' order; the arguments go to each ``mtrec.layers.Tower``."""
    return {
        t.name: Tower(
            units,
            activation=activation,
            dropout=dropout,
            l2=l2,
            name=f"tower_{t.name}",
        )
        for t in tasks
    }
