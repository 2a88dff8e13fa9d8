"""``plot_run``: every figure a run's ``metrics.json`` supports."""

import json
import logging
import os
import pathlib

from mtrec.plots.figures import gate_heatmaps
from mtrec.plots.figures import learning_curves
from mtrec.plots.figures import reliability_diagrams
from mtrec.plots.figures import weighting_curves

logger = logging.getLogger(__name__)

#: The run's figures: ``<run>/plots/<name>.png``.
FIGURES = {
    "learning_curves": learning_curves,
    "task_weights": weighting_curves,
    "gates": gate_heatmaps,
    "reliability": reliability_diagrams,
}
PLOTS_DIR = "plots"


def plot_run(
    run_dir: str | os.PathLike, metrics: dict | None = None
) -> list[pathlib.Path]:
    """Draws the run's figures into ``<run_dir>/plots/``; returns their paths.

    Args:
      run_dir: a run directory.
      metrics: its metrics (default: read ``metrics.json``).

    Raises:
      FileNotFoundError: no ``metrics.json`` (the run has not finished).
    """
    run_dir = pathlib.Path(run_dir)
    if metrics is None:
        path = run_dir / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{run_dir} has no metrics.json (not a finished run): nothing to plot"
            )
        metrics = json.loads(path.read_text())
    out = run_dir / PLOTS_DIR
    out.mkdir(exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        target = out / f"{name}.png"
        if draw(metrics, target):
            written.append(target)
    logger.info("plots written: %s", ", ".join(p.name for p in written) or "none")
    return written
