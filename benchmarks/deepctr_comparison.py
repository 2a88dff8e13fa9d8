"""Side by side with DeepCTR 0.9.4: train and inference examples/s of MMoE, PLE, ESMM.

The same encoded census-income arrays, the same model sizes and the same
``tf.data`` pipeline feed both libraries; each measurement runs in a fresh
worker process pinned to the cores of its variant (1 core, 2 cores), and the
two libraries alternate in interleaved pairs so that the load of the shared
machine falls on both alike. The result is the ratio mtrec ÷ DeepCTR per pair,
summarised as min/median/max over the pairs.

Data: ``census-income.test.gz`` split once by
``mtrec.data.prepare_census_income`` (group 1, split seed 0, 50/25/25:
the split of ``census_income.py``); the 49,881 training rows are permuted once
(seed 0) and the 24,941 test rows score the models. Inputs: the 38 columns of
``mtrec.data.census_features`` (31 categorical, 7 dense; the label sources
education and marital status, the income and the instance weight removed; the
issue's probe used 39 census-like features). Categorical columns are encoded
once to integer ids ``1..V-1`` by frequency on the train split (0: unseen in
train), a table of ``V`` rows; dense columns get the signed ``log1p`` of
``census_features`` on the heavy-tailed four, then a z-score with train
statistics. Both libraries receive these arrays, so neither pays for string
lookups; both get the ids as the file's int32 arrays; what each does with
them is recorded per run (``categorical_path``: DeepCTR gathers the id
directly; mtrec declares ``CategoricalFeature(dtype="int64", num_ids=V)``,
ids cast to int64 in its graph and embedded without a lookup, when its
``CategoricalFeature`` has that field, else an ``IntegerLookup`` over the
vocabulary ``1..V-1``, which maps every id to itself). Runs before
``c658d80`` gave mtrec int64 arrays (19 MB more of its ESMM peak).

Tasks: MMoE and PLE learn income (``income_50k``) and never married. ESMM
needs a click and a conversion implying it: click = ever married
(``1 - never_married``, 56.7% of rows), conversion = income over 50k and ever
married (so conversion <= click); ESMM learns CTR on click and CTCVR on
conversion over all rows.

Models (both libraries): embeddings of width 8; MMoE 8 experts of [32], towers
[16]; PLE 2 levels of 2 shared + 2 per-task experts of [32], towers [16]; ESMM
towers [64, 16] directly on the embeddings (DeepCTR's ESMM has no bottom;
mtrec's gets ``SharedBottom(units=[])``, the identity). Adam lr 1e-3, batch
1024, binary cross-entropy. DeepCTR: ``deepctr.models.MMOE``/``PLE``/``ESMM``
on ``SparseFeat``/``DenseFeat``, compiled as its examples compile them
(``metrics=["binary_crossentropy"]``), with ``l2_reg_embedding=0`` (its default
1e-5 adds a penalty mtrec's default does not have; dropping it makes DeepCTR
faster, not slower). mtrec: ``FeatureEmbedding``, ``MMoE``/``PLE``/
``SharedBottom``, ``MultiTaskRanker``/``ESMM``, with the fastest documented
options its API offers (detected with ``inspect``, recorded as
``mtrec_options``: ``training_metrics=False`` when ``MultiTaskRanker`` accepts
it, ``num_ids`` when ``CategoricalFeature`` has it, ``fused_optimizer=True``
when its training config has ``train.fused_optimizer``: Adam 1e-3 as
``mtrec.training.build_optimizer`` builds it by default, the same update rule
in one fused kernel per variable, what ``mtrec train`` and
``mtrec.training.fit`` train with; DeepCTR gets ``tf.keras.optimizers.Adam``,
what its ``"adam"`` resolves to). The mtrec measured is the
committed package of ``--mtrec-ref`` (default ``HEAD``, extracted with ``git
archive`` and put first on the workers' ``PYTHONPATH``), so that edits under
way in the shared working tree are not measured; ``--mtrec-ref worktree``
measures the working tree.

Timed, per worker: ``import_seconds`` (TensorFlow and the library),
``build_seconds`` (model construction and ``compile``), ``first_epoch_seconds``
(weights built on first use, tracing, one pass), ``train_examples_per_second``
(rows over the wall time of epochs 2.. of ``model.fit``, from Keras'
``on_epoch_begin`` to ``on_epoch_end``), ``inference_examples_per_second``
(``model.predict`` on the same cached batches, passes after a first one that
traces; each library's default batches per graph call: DeepCTR one, mtrec
``predict_steps_per_execution``; in ``fit`` likewise DeepCTR one, mtrec
``fit_steps_per_execution`` where no callback has batch hooks),
``equal_inference_examples_per_second`` and
``equal_train_examples_per_second`` (the same passes, and two more epochs
after one that traces, with both models compiled again with
``steps_per_execution=16``, and for those epochs both with
``tf.keras.optimizers.Adam`` (a new one on mtrec's model when its default is
the fused one; recorded per run as ``optimizer`` and ``equal_optimizer``):
the ratios at equal settings; these epochs come after the test predictions,
so the AUC is unchanged),
``xla_inference_examples_per_second`` and ``xla_first_predict_seconds``
(the same passes through XLA, each library's public way: DeepCTR's model
compiled again with Keras' ``jit_compile=True``, mtrec's built again with
``predict_jit_compile=True`` and the trained weights; timed last, after the
peak RSS is read),
``peak_rss_mb`` (``VmHWM``), split into ``import_rss_mb`` (at the end of the
imports, with ``optional_modules_imported``: TensorFlow and tf-keras import
pandas, pyarrow, scipy and PIL when installed) and ``rss_above_import_mb``
(the data, model, graphs and training). The training batches are
``from_tensor_slices(...).batch(1024).cache().prefetch(2)`` on both sides,
with tf.data's autotuning off, materialised before timing. Autotuning has
nothing to tune in that pipeline, and it added a fixed cost to every pass:
destroying an iterator waits for the autotuner's thread, 0 or about 0.16 s
at random (measured on this machine, both libraries alike). That is as long
as a whole 49-batch predict pass, so with it on the inference ratios read
about 1.0 or about 2.1 depending on which passes drew the wait (results
committed before this note had it on). After the timed epochs the test AUC of each
task is computed (the orchestrator scores the saved predictions with
``mtrec.metrics.ranking.auc``), so that nobody wins by training a broken model.

Two interpreters: DeepCTR runs in its own virtualenv,
``benchmarks/.venv-deepctr`` (git-ignored), created on first use with
``python3.11 -m venv`` and ``pip install deepctr==0.9.4 tensorflow==2.21.*
tf-keras==2.21.*``; mtrec in the interpreter running this script. This script
is therefore both the orchestrator and, with ``--worker``, the worker
(``deepctr_worker.py``); it and the modules it imports (``deepctr_settings``,
``deepctr_data``, ``deepctr_report``) import only the standard library and
numpy at module level (TensorFlow, mtrec or DeepCTR are imported inside the
worker, after pinning the cores). DeepCTR 0.9.4 runs on TF 2.21 with
tf-keras (``TF_USE_LEGACY_KERAS=1``) unchanged; one runtime shim: its package
``__init__`` starts a thread that asks PyPI for newer versions and prints to
stdout when that fails, so the worker makes ``requests.get`` raise during the
import, waits for that thread, and sends its output to stderr (no network
traffic, stdout stays JSON).

``--mtrec-precision mixed_bfloat16`` builds mtrec's model under
``mtrec.precision_scope`` (float32 weights, bfloat16 products; DeepCTR has no
such option and stays float32); the precision is recorded in
``mtrec_options``.

Writes ``benchmarks/results/deepctr_comparison.json`` and the
"deepctr-comparison" section of ``docs/benchmarks.md`` (with another
precision: ``deepctr_comparison_<precision>.json`` and the section
"deepctr-comparison-<precision>").

Usage (from the repository root, with mtrec's ``.venv``)::

    python benchmarks/deepctr_comparison.py [--repeats 3] [--cores 1,2]
        [--models mmoe,ple,esmm] [--epochs 10] [--quick]
"""

import argparse
import io
import json
import logging
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence

import numpy as np
from deepctr_data import load_arrays
from deepctr_data import prepare_data
from deepctr_report import markdown
from deepctr_report import summarise
from deepctr_report import verdict
from deepctr_report import write_doc_section
from deepctr_settings import BATCH_SIZE
from deepctr_settings import CENSUS_FILE
from deepctr_settings import DEEPCTR_REQUIREMENTS
from deepctr_settings import DEEPCTR_VENV
from deepctr_settings import DOC
from deepctr_settings import DOC_SECTION
from deepctr_settings import EMBEDDING_DIM
from deepctr_settings import LEARNING_RATE
from deepctr_settings import MODEL_SIZES
from deepctr_settings import MODEL_TASKS
from deepctr_settings import MODELS
from deepctr_settings import PRECISIONS
from deepctr_settings import REPO
from deepctr_settings import RESULTS
from deepctr_settings import SIDES
from deepctr_settings import VENV_MARKER
from deepctr_worker import run_worker
from machine_info import machine

logger = logging.getLogger("deepctr_comparison")


# --------------------------------------------------------------------------
# Arguments and schedule


def parse_cores(text: str, available: int) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``: core counts of the variants, each run pinned.

    Raises:
      ValueError: an entry is not an integer in ``1..available``, or repeats.
    """
    counts = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= available:
            raise ValueError(
                f"`--cores` must be a comma-separated list of core counts in "
                f"1..{available} (cores usable here). Received: `--cores={text}`"
            )
        if int(part) in counts:
            raise ValueError(
                f"`--cores` lists {part} twice. Received: `--cores={text}`"
            )
        counts.append(int(part))
    return counts


def parse_models(text: str) -> list[str]:
    """``"mmoe,esmm"`` -> ``["mmoe", "esmm"]``, in :data:`MODELS` names.

    Raises:
      ValueError: an unknown or repeated model name.
    """
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in MODELS:
            raise ValueError(
                f"`--models` must be a comma-separated list of {list(MODELS)}. "
                f"Received: `--models={text}`"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"`--models` repeats a model. Received: `--models={text}`")
    return names


def interleaved_schedule(
    models: Sequence[str], repeats: int
) -> list[tuple[int, str, str]]:
    """``(pair, model, side)`` in run order: pairs interleaved, sides alternated.

    For pair ``r`` every model runs DeepCTR then mtrec when ``r`` is even and
    mtrec then DeepCTR when it is odd, so that neither side always runs first
    (after the other's page cache, or at the same moment of a slow drift in
    the machine's load).
    """
    order = []
    for r in range(repeats):
        sides = SIDES if r % 2 == 0 else SIDES[::-1]
        for model in models:
            order += [(r, model, side) for side in sides]
    return order


# --------------------------------------------------------------------------
# Orchestrator


def ensure_deepctr_venv(venv: pathlib.Path = DEEPCTR_VENV) -> pathlib.Path:
    """DeepCTR's interpreter; creates and fills its virtualenv on first use.

    ``python3.11 -m venv``, then ``pip install`` :data:`DEEPCTR_REQUIREMENTS`
    (from the configured package index, reusing pip's cache), then an import
    check with ``TF_USE_LEGACY_KERAS=1``. A marker file records the
    requirements; a venv without it (or with other requirements) is filled
    again.

    Raises:
      RuntimeError: a step failed (its command and the end of its output).
    """
    python = venv / "bin" / "python"
    marker = venv / VENV_MARKER
    wanted = "\n".join(DEEPCTR_REQUIREMENTS) + "\n"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    steps = []
    if not python.is_file():
        steps.append(["python3.11", "-m", "venv", str(venv)])
    steps += [
        [str(python), "-m", "pip", "install", "--quiet", *DEEPCTR_REQUIREMENTS],
        [
            str(python),
            "-c",
            "import deepctr.models, deepctr.feature_column, tensorflow, tf_keras",
        ],
    ]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for command in steps:
        logger.info("DeepCTR virtualenv: %s", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
    marker.write_text(wanted)
    return python


def last_json_line(stdout: str) -> dict:
    """The JSON object on the last line of a worker's stdout that holds one.

    Raises:
      ValueError: no line parses as a JSON object.
    """
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON object in the worker's output: {stdout[-500:]!r}")


def worker_command(
    python: str | os.PathLike,
    side: str,
    model: str,
    cores: int,
    data: pathlib.Path,
    predictions: pathlib.Path,
    args,
) -> list[str]:
    command = [str(python), str(pathlib.Path(__file__).resolve())]
    command += ["--worker", side, "--model", model, "--num-cores", str(cores)]
    command += ["--data", str(data), "--predictions", str(predictions)]
    command += ["--epochs", str(args.epochs)]
    command += ["--predict-passes", str(args.predict_passes)]
    if args.rows:
        command += ["--rows", str(args.rows)]
    if side == "mtrec":
        command += ["--mtrec-precision", args.mtrec_precision]
    return command


def run_worker_process(command: list[str], pythonpath: str | None = None) -> dict:
    """Runs one worker; returns its JSON. ``pythonpath``: put first on its path."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return last_json_line(done.stdout)


def score(run: dict, arrays: dict) -> dict:
    """Test AUC per task from the worker's saved predictions."""
    from mtrec.metrics import auc

    with np.load(run["predictions"]) as predicted:
        return {
            task: round(auc(arrays[f"test.{label}"], predicted[label]), 5)
            for task, label in MODEL_TASKS[run["model"]]
        }


def _git(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *command], capture_output=True)


def resolve_ref(ref: str) -> str:
    """The commit id of ``ref`` in this checkout.

    Raises:
      ValueError: ``ref`` names no commit here.
    """
    done = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise ValueError(
            f"`--mtrec-ref` must name a commit of {REPO} or be 'worktree'. "
            f"Received: `--mtrec-ref={ref}`"
        )
    return done.stdout.decode().strip()


def mtrec_source(ref: str, dest: pathlib.Path) -> dict:
    """Where the mtrec workers import mtrec from, and what that is.

    With ``ref="worktree"`` they import the checkout's working tree (the
    editable install), uncommitted changes included (listed in the result).
    Otherwise the ``mtrec/`` package of commit ``ref`` is extracted into
    ``dest`` (``git archive``) and put first on the workers' ``PYTHONPATH``:
    what is measured is that commit, whatever other work is under way in the
    working tree.

    Returns:
      ``{"ref", "commit", "pythonpath", "uncommitted_in_mtrec"}``
      (``pythonpath`` is ``None`` for the working tree).

    Raises:
      ValueError: ``ref`` names no commit.
      RuntimeError: ``git archive`` failed.
    """
    head = resolve_ref("HEAD")
    if ref == "worktree":
        changed = _git("status", "--porcelain", "--", "mtrec").stdout.decode()
        return {
            "ref": ref,
            "commit": head,
            "pythonpath": None,
            "uncommitted_in_mtrec": [line[3:] for line in changed.splitlines()],
        }
    commit = resolve_ref(ref)
    archive = _git("archive", "--format=tar", commit, "mtrec")
    if archive.returncode != 0:
        raise RuntimeError(
            f"git archive {commit} mtrec failed: {archive.stderr.decode()[-2000:]}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return {
        "ref": ref,
        "commit": commit,
        "pythonpath": str(dest),
        "uncommitted_in_mtrec": [],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs per model")
    parser.add_argument("--cores", default="1,2", help="core counts, e.g. 1,2")
    parser.add_argument("--models", default=",".join(MODELS), help="e.g. mmoe,ple")
    parser.add_argument("--epochs", type=int, default=6, help="epochs 2.. are timed")
    parser.add_argument("--predict-passes", type=int, default=3)
    parser.add_argument(
        "--rows", type=int, default=None, help="train rows (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 pair, 4,096 rows, 2 epochs, 1 predict pass",
    )
    parser.add_argument(
        "--mtrec-ref",
        default="HEAD",
        help="commit of mtrec to measure (default HEAD: its committed package, "
        "not the working tree's edits); 'worktree' for the working tree",
    )
    parser.add_argument(
        "--mtrec-precision",
        choices=PRECISIONS,
        default="float32",
        help="mtrec's compute precision (DeepCTR stays float32); other than "
        "float32, the default --out and docs section get the precision's suffix",
    )
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--doc", type=pathlib.Path, default=DOC)
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--num-cores", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--predictions", type=pathlib.Path, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses and validates; a bad value is a usage error (exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.rows, args.epochs, args.predict_passes = 1, 4096, 2, 1
    if args.out is None:
        args.out = results_path(args.mtrec_precision)
    for name, minimum in (("repeats", 1), ("epochs", 2), ("predict_passes", 1)):
        value = getattr(args, name)
        if value < minimum:
            parser.error(
                f"`--{name.replace('_', '-')}` must be >= {minimum}. "
                f"Received: `--{name.replace('_', '-')}={value}`"
            )
    if args.rows is not None and args.rows < BATCH_SIZE:
        parser.error(
            f"`--rows` must be >= {BATCH_SIZE} (one batch). Received: "
            f"`--rows={args.rows}`"
        )
    if args.worker is None:
        try:
            args.cores = parse_cores(args.cores, len(os.sched_getaffinity(0)))
            args.models = parse_models(args.models)
            if args.mtrec_ref != "worktree":
                resolve_ref(args.mtrec_ref)
        except ValueError as err:
            parser.error(str(err))
    elif (
        args.model is None
        or args.num_cores is None
        or args.data is None
        or args.predictions is None
    ):
        parser.error("--worker needs --model, --num-cores, --data and --predictions")
    return args


def run(args) -> dict:
    """Orchestrator: data, DeepCTR's venv, the interleaved pairs, the report.

    The report is published (:func:`publish`) after every worker, so that a
    run stopped early still leaves its complete pairs in the JSON and the docs
    (marked partial).
    """
    info = machine()
    started = time.perf_counter()
    pythons = {"deepctr": ensure_deepctr_venv(), "mtrec": pathlib.Path(sys.executable)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        checkout = mtrec_source(args.mtrec_ref, pathlib.Path(tmp) / "mtrec-source")
        paths = {"deepctr": None, "mtrec": checkout["pythonpath"]}
        data_dir = pathlib.Path(tmp) / "data"
        meta = prepare_data(data_dir)
        _, arrays = load_arrays(data_dir, None)
        schedule = interleaved_schedule(args.models, args.repeats)
        planned = len(schedule) * len(args.cores)
        for cores in args.cores:
            for pair, model, side in schedule:
                predictions = pathlib.Path(tmp) / f"{cores}-{pair}-{model}-{side}.npz"
                command = worker_command(
                    pythons[side], side, model, cores, data_dir, predictions, args
                )
                result = run_worker_process(command, paths[side])
                result["pair"] = pair
                result["test_auc"] = score(result, arrays)
                del result["predictions"]
                runs.append(result)
                logger.info(
                    "%d core(s), pair %d, %s, %s: train %.0f ex/s, inference "
                    "%.0f ex/s, AUC %s",
                    cores,
                    pair,
                    model,
                    side,
                    result["train_examples_per_second"],
                    result["inference_examples_per_second"],
                    result["test_auc"],
                )
                info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
                wall_seconds = round(time.perf_counter() - started, 1)
                report = make_report(
                    runs, args, meta, info, checkout, wall_seconds, planned
                )
                publish(report, args.out, args.doc)
    return report


def results_path(precision: str) -> pathlib.Path:
    """The default JSON: ``RESULTS``, suffixed by a precision other than float32."""
    if precision == "float32":
        return RESULTS
    return RESULTS.with_name(f"{RESULTS.stem}_{precision}.json")


def doc_section(report: dict) -> str:
    """``DOC_SECTION``, suffixed by mtrec's precision when not float32."""
    precision = report["mtrec_options"].get("precision", "float32")
    return DOC_SECTION if precision == "float32" else f"{DOC_SECTION}-{precision}"


def publish(report: dict, out: pathlib.Path, doc: pathlib.Path) -> bool:
    """Writes the JSON (atomically) and the docs section once a pair is complete.

    Returns whether anything was written (nothing before the first pair).
    """
    if not any(report["summary"].values()):
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    write_doc_section(doc, doc_section(report), markdown(report))
    return True


def make_report(
    runs: list[dict],
    args: argparse.Namespace,
    meta: dict,
    info: dict,
    checkout: dict,
    wall_seconds: float,
    runs_planned: int,
) -> dict:
    """The JSON report: settings, data, machine, versions, summary, verdict, runs.

    Args:
      runs: the workers' results with ``pair`` and ``test_auc`` added.
      args: the parsed arguments (``quick``, ``repeats``, ``cores``,
        ``models``, ``epochs``, ``predict_passes``, ``rows``).
      meta: the data description from :func:`prepare_data`.
      info: :func:`machine` with ``load_average_at_end`` added.
      checkout: :func:`mtrec_source` (what the mtrec workers imported).
      wall_seconds: the run's wall time.
      runs_planned: the workers the run was to start (``complete`` is
        whether they all ran).
    """
    summary = summarise(runs, args.models, args.cores)
    # A side's first run (None before it has one: the report after one worker).
    first = {side: next((r for r in runs if r["side"] == side), None) for side in SIDES}

    def of_first(side: str, key: str):
        return first[side][key] if first[side] else None

    report = {
        "benchmark": "deepctr_comparison",
        "quick": args.quick,
        "repeats": args.repeats,
        "cores": args.cores,
        "models": args.models,
        "epochs": args.epochs,
        "predict_passes": args.predict_passes,
        "rows": args.rows or meta["rows"]["train"],
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "embedding_dim": EMBEDDING_DIM,
        "model_sizes": MODEL_SIZES,
        "tasks": {m: dict(MODEL_TASKS[m]) for m in args.models},
        "data": {
            "file": str(CENSUS_FILE.relative_to(REPO.parent)),
            "description": (
                "census-income.test split 50/25/25 (split seed 0, the split of "
                f"census_income.py); {args.rows or meta['rows']['train']:,} "
                f"train rows, {meta['rows']['test']:,} test rows; "
                f"{len(meta['features'])} inputs "
                f"({sum(f['kind'] == 'categorical' for f in meta['features'])} "
                "categorical integer-encoded once, "
                f"{sum(f['kind'] == 'dense' for f in meta['features'])} dense "
                "z-scored once; the same arrays feed both libraries). MMoE and "
                "PLE: income + never married; ESMM: click = ever married, "
                "conversion = income > 50k and ever married."
            ),
            "features": meta["features"],
            "label_rates": meta["label_rates"],
        },
        "models_text": (
            "embeddings 8; MMoE 8 experts × [32], towers [16]; PLE 2 levels of "
            "2 shared + 2 per-task experts × [32], towers [16]; ESMM towers "
            "[64, 16] on the embeddings; Adam 1e-3 (each library's: DeepCTR "
            "`tf.keras.optimizers.Adam`, mtrec its fused default), batch 1024, "
            "binary cross-entropy; DeepCTR with `l2_reg_embedding=0` (mtrec has "
            "no embedding penalty by default)."
        ),
        "machine": info,
        "mtrec_checkout": checkout,
        "versions": {side: of_first(side, "versions") for side in SIDES},
        "mtrec_options": {
            k: v
            for k, v in (of_first("mtrec", "options") or {}).items()
            if k in ("training_metrics", "encoded_ids", "fused_optimizer", "precision")
        },
        "paths": {side: of_first(side, "options") for side in SIDES},
        "training_metrics": {
            side: of_first(side, "training_metrics") for side in SIDES
        },
        "summary": summary,
        "verdict": verdict(summary),
        "runs": runs,
        "wall_seconds": wall_seconds,
        "runs_planned": runs_planned,
        "runs_done": len(runs),
        "complete": len(runs) == runs_planned,
    }
    return report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:  # child process: one library, one model, JSON on stdout
        result = run_worker(args)
        print(json.dumps(result))
        return result
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = run(args)
    print(json.dumps(report["summary"], indent=2))
    return report


if __name__ == "__main__":
    main()
