"""The configs shipped inside the package (``mtrec train esmm``)."""

import importlib.resources
import pathlib

#: Names of the shipped configs: ``mtrec train <name>``.
SHIPPED_CONFIGS = (
    "esmm",
    "shared_bottom",
    "single_task_ctr",
    "aliccp",
    "aliexpress",
    "kuairand",
)


def shipped_config(name: str) -> pathlib.Path:
    """The path of the shipped config ``name`` (one of :data:`SHIPPED_CONFIGS`).

    Raises:
      ValueError: an unknown name.

    Example:

    >>> shipped_config("esmm").name
    'esmm.yaml'
    """
    if name not in SHIPPED_CONFIGS:
        raise ValueError(
            f"`name` must be one of {list(SHIPPED_CONFIGS)}. Received: `name={name!r}`"
        )
    return pathlib.Path(
        str(importlib.resources.files("mtrec") / "configs" / f"{name}.yaml")
    )
