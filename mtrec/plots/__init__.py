"""Pictures of a run: learning curves, task weights, gates, calibration.

``plot_run(run_dir)`` draws every figure its ``metrics.json`` supports into
``<run>/plots/``; ``mtrec plot RUN_DIR`` calls it, and ``train`` does at the
end of every run. Matplotlib's ``Agg`` backend: no display needed.
"""

from mtrec.plots.figures import gate_heatmaps
from mtrec.plots.figures import learning_curves
from mtrec.plots.figures import reliability_diagrams
from mtrec.plots.figures import weighting_curves
from mtrec.plots.run import plot_run

__all__ = [
    "gate_heatmaps",
    "learning_curves",
    "plot_run",
    "reliability_diagrams",
    "weighting_curves",
]
