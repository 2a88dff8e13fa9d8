"""The MMoE synthetic benchmark's settings: models, widths, tasks, result files.

Shared by the run (``mmoe_synthetic.py``) and its report
(``mmoe_synthetic_report.py``); standard library only.
"""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

RESULTS = REPO / "benchmarks" / "results" / "mmoe_synthetic.json"
INPUT_DIM = 100
FEATURES = [f"x{i}" for i in range(INPUT_DIM)]
#: The paper's first-layer width: shared-bottom's units, 8 experts' units in all.
WIDTH = 128
NUM_EXPERTS = 8


def models(width: int = WIDTH) -> dict[str, tuple[str, dict]]:
    """Model name -> (backbone, backbone_args), all with ``width`` first-layer units.

    Shared-bottom: one ``width``-unit layer; OMoE and MMoE: 8 experts of one
    ``width / 8``-unit layer each.
    """
    if width < NUM_EXPERTS or width % NUM_EXPERTS:
        raise ValueError(
            f"`width` must be a positive multiple of {NUM_EXPERTS}. "
            f"Received: `width={width}`"
        )
    experts = {"num_experts": NUM_EXPERTS, "expert_units": [width // NUM_EXPERTS]}
    return {
        "shared_bottom": ("shared_bottom", {"units": [width]}),
        "omoe": ("omoe", dict(experts)),
        "mmoe": ("mmoe", dict(experts)),
    }


#: The default std of the sine frequencies alpha (as public reproductions use).
ALPHA_STD = 1.0


def is_default_setting(width: int, alpha_std: float) -> bool:
    """The paper's sizes on the default data: the setting with its own section."""
    return width == WIDTH and alpha_std == ALPHA_STD


def results_path(width: int = WIDTH, alpha_std: float = ALPHA_STD) -> pathlib.Path:
    """``results/mmoe_synthetic[_width<W>][_alpha<A>].json`` for a setting."""
    name = "mmoe_synthetic"
    if width != WIDTH:
        name += f"_width{width}"
    if alpha_std != ALPHA_STD:
        name += f"_alpha{alpha_std:g}"
    return RESULTS.with_name(f"{name}.json")


def setting_label(width: int, alpha_std: float) -> str:
    """How a setting is named in the docs, e.g. ``width 32, alpha_std 3``."""
    return (
        f"width {width}{' (paper)' if width == WIDTH else ''}, "
        f"alpha_std {alpha_std:g}{' (default)' if alpha_std == ALPHA_STD else ''}"
    )


TOWER_UNITS = [8]
#: Task name -> label column (a task must not share its label's name).
TASKS = {"task1": "y1", "task2": "y2"}
#: A run whose test MSE (standardised) exceeds this on a task is counted as
#: not having learnt that task (converged runs reach about 0.001-0.01).
STUCK_MSE = 0.1
#: Epochs (1-based) of the training-loss curve shown in the doc.
CURVE_EPOCHS = (1, 2, 3, 5, 10, 20)
