"""Progress bars for long steps that are not ``model.fit``.

``progress(iterable, desc)`` is ``tqdm`` that shows on a terminal and stays
silent when stderr is not one (CI logs, pipes, notebooks' captured output):
``tqdm(disable=None)``. ``MTREC_PROGRESS=1`` forces it on, ``0`` off.
"""

import os

from tqdm import tqdm


def progress(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """Wraps ``iterable`` in a progress bar on a terminal (module docstring).

    Example:

    >>> sum(progress(range(3), "counting"))
    3
    """
    setting = os.environ.get("MTREC_PROGRESS", "")
    disable = {"1": False, "0": True}.get(setting)
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=disable,
        leave=False,
        dynamic_ncols=True,
    )
