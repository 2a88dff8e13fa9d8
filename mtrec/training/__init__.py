"""Configuration, the training loop, evaluation and checkpoints."""

from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import load_config
from mtrec.training.train import RunResult
from mtrec.training.train import export_run
from mtrec.training.train import inspect_run
from mtrec.training.train import restore_run
from mtrec.training.train import resume_run
from mtrec.training.train import train

__all__ = [
    "ConfigError",
    "RunConfig",
    "RunResult",
    "export_run",
    "inspect_run",
    "load_config",
    "restore_run",
    "resume_run",
    "train",
]
