"""The affinity matrix as a heatmap PNG."""

import os

import numpy as np


def affinity_heatmap(affinity: dict, path: str | os.PathLike) -> None:
    """Draws ``Z(i→j)`` (rows: the task stepped on; columns: the task helped).

    Args:
      affinity: ``{"tasks": [...], "affinity": {i: {j: Z}}}`` (``metrics.json``'s
        ``affinity`` entry, or ``AffinityTracker.matrix()``).
      path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(affinity["tasks"])
    z = np.array([[affinity["affinity"][i][j] for j in tasks] for i in tasks])
    bound = float(np.nanmax(np.abs(z))) or 1.0
    size = 1.2 + 0.9 * len(tasks)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(z, cmap="RdBu", vmin=-bound, vmax=bound)
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel("task helped (j)")
    ax.set_ylabel("task stepped on (i)")
    ax.set_title("inter-task affinity Z(i→j)")
    for a in range(len(tasks)):
        for b in range(len(tasks)):
            ax.text(b, a, f"{z[a, b]:.3g}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
