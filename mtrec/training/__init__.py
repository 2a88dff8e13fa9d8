"""Configuration, the training loop, evaluation and checkpoints.

The steps of a run are public and compose::

    prepared = prepare(config)                  # or prepare(config, train=frame)
    model = build_model(prepared, config)
    data = datasets(prepared, config)
    state = fit(model, data, config, run_dir)
    report = evaluate_model(model, data.eval, config.eval.oracle)

``train(config)`` is that composition plus the run directory and the export.
"""

from mtrec.training.builders import build_optimizer
from mtrec.training.builders import dummy_inputs
from mtrec.training.callbacks import NonFiniteLossError
from mtrec.training.callbacks import NonFiniteLossGuard
from mtrec.training.callbacks import WeightingUpdate
from mtrec.training.cluster import ClusterSpec
from mtrec.training.cluster import cluster_server
from mtrec.training.cluster import cluster_spec
from mtrec.training.cluster import parse_tf_config
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import WeightingConfig
from mtrec.training.config import load_config
from mtrec.training.config import validate_config
from mtrec.training.distribution import make_strategy
from mtrec.training.distribution import variable_partitioner
from mtrec.training.evaluate import Predictor
from mtrec.training.evaluate import evaluate_model
from mtrec.training.evaluate import gate_report
from mtrec.training.evaluate import predict_dataset
from mtrec.training.inputs import Datasets
from mtrec.training.inputs import datasets
from mtrec.training.inputs import encoded_train_part
from mtrec.training.inputs import file_datasets
from mtrec.training.inputs import memory_batches
from mtrec.training.local_cluster import LocalCluster
from mtrec.training.loop import compile_model
from mtrec.training.loop import fit
from mtrec.training.loop import steps_per_epoch
from mtrec.training.model import build_model
from mtrec.training.prepared import FileSource
from mtrec.training.prepared import MemorySource
from mtrec.training.prepared import Prepared
from mtrec.training.prepared import PreparedFiles
from mtrec.training.prepared import prepare
from mtrec.training.prepared import prepare_files
from mtrec.training.report import format_metrics
from mtrec.training.run import resume_run
from mtrec.training.run import train
from mtrec.training.run_dir import RunResult
from mtrec.training.run_dir import eval_dataset
from mtrec.training.run_dir import export_run
from mtrec.training.run_dir import inspect_run
from mtrec.training.run_dir import restore_run
from mtrec.training.run_dir import warmup_rows
from mtrec.training.run_status import RunStatus
from mtrec.training.run_status import list_runs
from mtrec.training.run_status import run_status
from mtrec.training.state import SelectionState
from mtrec.training.state import TrainingState

__all__ = [
    "ClusterSpec",
    "ConfigError",
    "Datasets",
    "FileSource",
    "MemorySource",
    "LocalCluster",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "Predictor",
    "Prepared",
    "PreparedFiles",
    "RunConfig",
    "RunResult",
    "RunStatus",
    "SelectionState",
    "TrainingState",
    "WeightingConfig",
    "WeightingUpdate",
    "build_model",
    "build_optimizer",
    "cluster_server",
    "cluster_spec",
    "compile_model",
    "datasets",
    "dummy_inputs",
    "encoded_train_part",
    "eval_dataset",
    "evaluate_model",
    "export_run",
    "file_datasets",
    "fit",
    "format_metrics",
    "gate_report",
    "inspect_run",
    "list_runs",
    "run_status",
    "load_config",
    "make_strategy",
    "memory_batches",
    "parse_tf_config",
    "predict_dataset",
    "prepare",
    "prepare_files",
    "restore_run",
    "resume_run",
    "steps_per_epoch",
    "train",
    "validate_config",
    "variable_partitioner",
    "warmup_rows",
]
