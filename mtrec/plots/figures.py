"""One function per figure, each from a run's ``metrics.json`` (a dict).

Each returns ``False`` (and draws nothing) when the metrics lack what it
needs, e.g. gate heatmaps of a shared-bottom run.
"""

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _outputs(metrics: dict) -> list[str]:
    return list(metrics.get("eval", {}))


def _grid(plt, panels: int, width: float = 4.0, height: float = 3.0):
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False
    )
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _save(plt, fig, path) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def learning_curves(metrics: dict, path: str | os.PathLike) -> bool:
    """Per output: the training loss and, with selection, the held-out log
    loss and AUC per epoch."""
    history = metrics.get("train", {})
    outputs = [o for o in _outputs(metrics) if history.get(f"{o}_loss")]
    outputs += [
        o for o in _outputs(metrics) if o not in outputs and history.get(f"val_{o}_auc")
    ]
    if not outputs:
        return False
    plt = _pyplot()
    fig, axes = _grid(plt, len(outputs))
    for ax, out in zip(axes, outputs, strict=False):
        curves = [
            (f"{out}_loss", "train loss", "-"),
            (f"val_{out}_logloss", "held-out log loss", "--"),
        ]
        for key, label, style in curves:
            values = history.get(key)
            if values:
                ax.plot(
                    range(1, len(values) + 1), values, style, marker="o", label=label
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        auc = history.get(f"val_{out}_auc")
        if auc:
            twin = ax.twinx()
            twin.plot(range(1, len(auc) + 1), auc, ":", color="tab:green", marker="s")
            twin.set_ylabel("held-out AUC", color="tab:green")
        ax.set_title(out)
        ax.legend(fontsize=7, loc="upper right")
    _save(plt, fig, path)
    return True


def weighting_curves(metrics: dict, path: str | os.PathLike) -> bool:
    """The loss weighting's effective weight and each task's loss per epoch."""
    history = metrics.get("train", {})
    weights = {
        k[len("weight_") :]: v for k, v in history.items() if k.startswith("weight_")
    }
    if not weights:
        return False
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for out, values in weights.items():
        epochs = range(1, len(values) + 1)
        left.plot(epochs, values, marker="o", label=out)
        loss = history.get(f"{out}_loss")
        if loss:
            right.plot(range(1, len(loss) + 1), loss, marker="o", label=out)
    left.set_title(f"task weights ({metrics.get('weighting', 'weighting')})")
    right.set_title("task losses")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    _save(plt, fig, path)
    return True


def gate_heatmaps(metrics: dict, path: str | os.PathLike) -> bool:
    """Mean gate weight per gate (rows) and expert (columns), MoE backbones."""
    gates = metrics.get("gates")
    if not gates:
        return False
    names = list(gates)
    width = max(len(g["mean_weight"]) for g in gates.values())
    table = np.full((len(names), width), np.nan)
    for row, name in enumerate(names):
        weights = gates[name]["mean_weight"]
        table[row, : len(weights)] = weights
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * width, 1.2 + 0.45 * len(names)))
    image = ax.imshow(table, cmap="viridis", vmin=0.0, vmax=max(np.nanmax(table), 1e-9))
    ax.set_xticks(range(width), [f"e{i}" for i in range(width)])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("expert")
    ax.set_title("mean gate weight")
    for r in range(len(names)):
        for c in range(width):
            if np.isfinite(table[r, c]):
                ax.text(
                    c,
                    r,
                    f"{table[r, c]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w",
                )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    _save(plt, fig, path)
    return True


def reliability_diagrams(metrics: dict, path: str | os.PathLike) -> bool:
    """Per binary output: label rate against mean prediction (equal-count bins)."""
    curves = {
        out: entry["reliability"]
        for out, entry in metrics.get("eval", {}).items()
        if entry.get("reliability")
    }
    if not curves:
        return False
    plt = _pyplot()
    fig, axes = _grid(plt, len(curves), width=3.4, height=3.2)
    for ax, (out, curve) in zip(axes, curves.items(), strict=False):
        x, y = curve["mean_prediction"], curve["label_rate"]
        top = max(max(x), max(y), 1e-6) * 1.05
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8, label="calibrated")
        ax.plot(x, y, marker="o", label="model")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("mean prediction")
        ax.set_ylabel("label rate")
        ax.set_title(out)
        ax.legend(fontsize=7, loc="upper left")
    _save(plt, fig, path)
    return True
