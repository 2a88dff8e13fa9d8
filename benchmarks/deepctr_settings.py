"""The DeepCTR comparison's fixed settings: paths, data split, model sizes, tasks.

Shared by the orchestrator (``deepctr_comparison.py``), its worker
(``deepctr_worker.py``), its report (``deepctr_report.py``) and the benchmarks
that reuse its census arrays and models. Standard library only: the worker
imports it in DeepCTR's virtualenv too.
"""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "deepctr_comparison.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_SECTION = "deepctr-comparison"
#: Batches prefetched by both sides' pipelines (tf.data autotuning is off).
PREFETCH = 2
#: mtrec's ``--mtrec-precision`` choices (``mtrec.precision.PRECISIONS``; not
#: imported: this module imports neither TensorFlow nor mtrec at load time).
PRECISIONS = ("float32", "mixed_bfloat16")
CENSUS_FILE = (
    REPO.parent / "shared" / "data" / "census-income" / "census-income.test.gz"
)
SPLIT_DIR = REPO / "data" / "census-income" / "group1"
SPLIT_SEED = 0
#: Seed of the one permutation of the training rows and of both models.
SEED = 0

DEEPCTR_VENV = REPO / "benchmarks" / ".venv-deepctr"
DEEPCTR_REQUIREMENTS = ("deepctr==0.9.4", "tensorflow==2.21.*", "tf-keras==2.21.*")
#: Written in the virtualenv once the requirements installed and imported.
VENV_MARKER = ".deepctr-comparison-installed"

SIDES = ("deepctr", "mtrec")
#: Packages TensorFlow or tf-keras import when installed (reported per side).
OPTIONAL_MODULES = ("pandas", "pyarrow", "scipy", "PIL")
MODELS = ("mmoe", "ple", "esmm")
EMBEDDING_DIM = 8
BATCH_SIZE = 1024
#: Batches per graph call of the equal-settings predict passes (mtrec's
#: default ``predict_steps_per_execution``; Keras' ``steps_per_execution``
#: set on DeepCTR's model the same way).
EQUAL_STEPS_PER_CALL = 16
#: Timed epochs of the equal-settings training (after one that traces).
EQUAL_EPOCHS = 2
LEARNING_RATE = 1e-3
#: Model sizes, the same for both libraries.
MODEL_SIZES = {
    "mmoe": {"num_experts": 8, "expert_units": [32], "tower_units": [16]},
    "ple": {
        "num_levels": 2,
        "num_shared_experts": 2,
        "num_task_experts": 2,
        "expert_units": [32],
        "tower_units": [16],
    },
    "esmm": {"tower_units": [64, 16]},
}
#: ``(task name, label column)`` per model, in output order.
MODEL_TASKS = {
    "mmoe": (("income", "income_50k"), ("marital", "never_married")),
    "ple": (("income", "income_50k"), ("marital", "never_married")),
    "esmm": (("ctr", "click"), ("ctcvr", "conversion")),
}
LABELS = ("income_50k", "never_married", "click", "conversion")
#: The target of issue 11 (mtrec ÷ DeepCTR, median, one core).
TARGET_RATIO = 2.0
