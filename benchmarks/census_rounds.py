"""Shared by the one-core round-robin benchmarks on the issue-11 census models.

``steps_per_call.py`` and ``fused_optimizer.py`` time variants of mtrec's
census MMoE, PLE and ESMM (``deepctr_comparison``'s data, sizes and builder)
against a baseline in interleaved rounds on one pinned core. This module holds
their common arguments, setup, data and report writing.
"""

import argparse
import logging
import os
import pathlib
import tempfile

import expert_mixing
import numpy as np
from click_log_runs import write_report
from deepctr_comparison import parse_models
from deepctr_data import load_arrays
from deepctr_data import prepare_data
from deepctr_settings import BATCH_SIZE
from deepctr_settings import MODEL_TASKS
from deepctr_settings import MODELS
from deepctr_settings import PREFETCH
from doc_sections import update_doc_section
from machine_info import cpu_description
from machine_info import machine

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def add_arguments(parser: argparse.ArgumentParser, results: pathlib.Path) -> None:
    """``--models``, ``--repeats``, ``--core``, ``--out`` and ``--no-doc``."""
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--core", type=int, default=None, help="default: the last")
    parser.add_argument("--out", type=pathlib.Path, default=results)
    parser.add_argument("--no-doc", action="store_true", help="leave docs/ alone")


def check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Parses ``args.models``; exits with a usage error naming a bad value."""
    try:
        args.models = parse_models(args.models)
    except ValueError as error:
        parser.error(str(error))
    if args.repeats < 1:
        parser.error(f"`--repeats` must be >= 1. Received: `--repeats={args.repeats}`")


def parse_arguments(argv, description: str, results: pathlib.Path):
    """The common arguments alone (:func:`add_arguments`), checked."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser, results)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    return args


def start(args) -> tuple:
    """The machine before the run (``machine_info.machine``), logging, one
    pinned core and the census arrays: ``(info, tf, core, meta, arrays)``."""
    info = machine()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tf, core = one_core_tensorflow(args.core)
    meta, arrays = census_arrays()
    return info, tf, core, meta, arrays


def one_core_tensorflow(core: int | None):
    """Pins this process to ``core`` (default the last one it may use) and
    returns ``(tf, core)`` with one intra- and inter-op thread."""
    core = core if core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, [core])
    return expert_mixing.import_tf(1), core


def census_arrays() -> tuple[dict, dict]:
    """``(meta, arrays)``: ``deepctr_comparison``'s encoded census split."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = pathlib.Path(tmp) / "data"
        meta = prepare_data(data_dir)
        _, arrays = load_arrays(data_dir, None)
    return meta, arrays


def training_elements(model_name: str, meta: dict, arrays: dict) -> dict:
    """The train split's inputs (int64 ids, float32 values) and the model's
    float32 labels, by name (mtrec's input dict)."""
    categorical = {f["name"] for f in meta["features"] if f["kind"] == "categorical"}
    elements = {}
    for f in meta["features"]:
        values = arrays[f"train.{f['name']}"]
        elements[f["name"]] = values.astype(
            np.int64 if f["name"] in categorical else np.float32
        )
    for _, label in MODEL_TASKS[model_name]:
        elements[label] = arrays[f"train.{label}"].astype(np.float32)
    return elements


def cached_batches(tf, elements: dict):
    """A cached, prefetched dataset of ``elements`` in batches (filled now)."""
    fixed = tf.data.Options()
    fixed.autotune.enabled = False  # as in deepctr_comparison
    data = tf.data.Dataset.from_tensor_slices(elements).batch(BATCH_SIZE)
    data = data.cache().prefetch(PREFETCH).with_options(fixed)
    for _ in data:
        pass
    return data


def run_facts(info: dict, tf, args, core: int, meta: dict) -> dict:
    """What every report records about the run; ``info``: the machine as
    :func:`start` found it (its load average among the rest)."""
    return {
        "batch": BATCH_SIZE,
        "train_rows": int(meta["rows"]["train"]),
        "core": core,
        "repeats": args.repeats,
        "tensorflow": tf.__version__,
        "machine": info,
    }


def core_words(report: dict) -> str:
    """``"one core (<CPU>)"`` for a report's markdown; an older JSON, made
    before the record held the machine, says "CPU not recorded"."""
    return f"one core ({cpu_description(report.get('machine', {}))})"


def finish(report: dict, args, markdown, doc_section: str) -> dict:
    """Writes the JSON, prints the markdown and (unless ``--no-doc``)
    rewrites ``doc_section`` of ``docs/benchmarks.md``."""
    write_report(args.out, report, markdown)
    if not args.no_doc:
        update_doc_section(DOC, doc_section, markdown(report))
    return report
