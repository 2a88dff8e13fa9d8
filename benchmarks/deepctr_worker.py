"""The DeepCTR comparison's worker: one library, one model, in a fresh process.

Run by ``deepctr_comparison.py --worker`` in mtrec's interpreter or in DeepCTR's
virtualenv, so it imports only the standard library and numpy at module level;
TensorFlow, mtrec or DeepCTR are imported inside :func:`run_worker`, after
pinning the cores. :func:`build_mtrec` and :func:`load_arrays` are reused by
the benchmarks that measure mtrec alone on the same census arrays and models.
"""

import contextlib
import functools
import os
import pathlib
import platform
import statistics
import sys
import threading
import time

import numpy as np
from deepctr_data import load_arrays
from deepctr_data import split_arrays
from deepctr_settings import BATCH_SIZE
from deepctr_settings import EMBEDDING_DIM
from deepctr_settings import EQUAL_EPOCHS
from deepctr_settings import EQUAL_STEPS_PER_CALL
from deepctr_settings import LEARNING_RATE
from deepctr_settings import MODEL_SIZES
from deepctr_settings import MODEL_TASKS
from deepctr_settings import OPTIONAL_MODULES
from deepctr_settings import PREFETCH
from deepctr_settings import SEED
from epoch_timer import epoch_timer_class
from epoch_timer import examples_per_second
from matmul_floor import matmul_floor


def peak_rss_mb() -> float:
    """``VmHWM`` of this process from ``/proc/self/status``, in MiB."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line in /proc/self/status")


def _import_deepctr():
    """Imports DeepCTR without its PyPI version check (see the module docstring)."""
    import requests

    def refuse(*args, **kwargs):
        raise requests.ConnectionError("version check disabled by the benchmark")

    before = set(threading.enumerate())
    original = requests.get
    requests.get = refuse
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import deepctr
            from deepctr import feature_column
            from deepctr import models

            for thread in set(threading.enumerate()) - before:
                thread.join()
    finally:
        requests.get = original
    return deepctr, feature_column, models


def _build_deepctr(model_name: str, meta: dict, tf) -> tuple:
    """DeepCTR's model, its dataset structure and what it computes."""
    _, fc, models = _import_deepctr()
    columns = [
        fc.SparseFeat(f["name"], vocabulary_size=f["vocabulary_size"], embedding_dim=8)
        if f["kind"] == "categorical"
        else fc.DenseFeat(f["name"], 1)
        for f in meta["features"]
    ]
    sizes = MODEL_SIZES[model_name]
    names = tuple(t for t, _ in MODEL_TASKS[model_name])
    common = {"task_names": names, "l2_reg_embedding": 0.0}
    if model_name == "mmoe":
        model = models.MMOE(
            columns,
            num_experts=sizes["num_experts"],
            expert_dnn_hidden_units=tuple(sizes["expert_units"]),
            tower_dnn_hidden_units=tuple(sizes["tower_units"]),
            **common,
        )
    elif model_name == "ple":
        model = models.PLE(
            columns,
            shared_expert_num=sizes["num_shared_experts"],
            specific_expert_num=sizes["num_task_experts"],
            num_levels=sizes["num_levels"],
            expert_dnn_hidden_units=tuple(sizes["expert_units"]),
            tower_dnn_hidden_units=tuple(sizes["tower_units"]),
            **common,
        )
    else:
        model = models.ESMM(
            columns, tower_dnn_hidden_units=tuple(sizes["tower_units"]), **common
        )
    model.compile(
        **_compile_arguments(
            "deepctr", tf.keras.optimizers.Adam(LEARNING_RATE), len(names)
        )
    )
    options = {
        "categorical_path": "SparseFeat int32 ids, embedding gather (no lookup)",
        "dense_path": "DenseFeat, the z-scored float32 values as given",
        "l2_reg_embedding": 0.0,
        "optimizer": _class_path(model.optimizer),
    }
    return model, options


def mtrec_options(mtrec) -> dict:
    """The fastest documented options this mtrec offers, detected by signature.

    ``training_metrics``: ``False`` when ``MultiTaskRanker.__init__`` accepts
    it (else ``None``: not offered, the metrics run). ``encoded_ids``:
    ``True`` when ``CategoricalFeature`` has the ``num_ids`` field (ids
    ``0..num_ids-1`` embedded without a lookup), else ``None``: categorical
    int64 features with the vocabulary ``1..V-1``. ``fused_optimizer``:
    ``True`` when mtrec's training config has ``train.fused_optimizer`` (its
    default, what ``mtrec train`` and ``mtrec.training.fit`` compile with: the
    same Adam update rule in one fused kernel per variable, from
    ``mtrec.training.build_optimizer``), else ``None``: ``tf.keras``' Adam.
    """
    import dataclasses
    import inspect

    ranker = inspect.signature(mtrec.MultiTaskRanker.__init__).parameters
    fields = {f.name for f in dataclasses.fields(mtrec.CategoricalFeature)}
    import mtrec.training

    train = mtrec.training.RunConfig().train
    return {
        "training_metrics": False if "training_metrics" in ranker else None,
        "encoded_ids": True if "num_ids" in fields else None,
        "fused_optimizer": True if hasattr(train, "fused_optimizer") else None,
    }


def mtrec_optimizer(mtrec, options: dict, tf):
    """Adam with lr :data:`LEARNING_RATE`, as mtrec's training API builds it
    (``mtrec.training.build_optimizer``, constant rate) when
    ``options["fused_optimizer"]``, else ``tf.keras.optimizers.Adam``."""
    if not options["fused_optimizer"]:
        return tf.keras.optimizers.Adam(LEARNING_RATE)
    import dataclasses

    import mtrec.training

    config = mtrec.training.RunConfig()
    config.train = dataclasses.replace(
        config.train,
        optimizer="adam",
        learning_rate=LEARNING_RATE,
        lr_schedule="constant",
        fused_optimizer=True,
    )
    return mtrec.training.build_optimizer(config)


def build_mtrec(
    model_name: str, meta: dict, tf, precision: str = "float32", **model_options
):
    """mtrec's model, built with the public API as a user would for encoded ids,
    under the compute ``precision`` (``mtrec.precision_scope``);
    ``model_options``: more arguments of the model (``MultiTaskRanker`` /
    ``ESMM``), e.g. ``predict_jit_compile=True`` (other benchmarks; this one
    passes none)."""
    import mtrec

    if precision == "float32":
        return _build_mtrec_model(model_name, meta, tf, mtrec, model_options)
    with mtrec.precision_scope(precision):
        model, options = _build_mtrec_model(model_name, meta, tf, mtrec, model_options)
    return model, {**options, "precision": precision}


def _build_mtrec_model(
    model_name: str, meta: dict, tf, mtrec, model_options: dict
) -> tuple:
    options = mtrec_options(mtrec)
    features, vocabularies, stats = [], {}, {}
    for f in meta["features"]:
        name = f["name"]
        if f["kind"] == "dense":
            features.append({"name": name, "kind": "dense", "normalization": "none"})
            stats[name] = {"mean": 0.0, "std": 1.0, "boundaries": None}
        elif options["encoded_ids"]:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "dtype": "int64",
                    "num_ids": f["vocabulary_size"],
                    "embedding_dim": EMBEDDING_DIM,
                }
            )
        else:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "dtype": "int64",
                    "embedding_dim": EMBEDDING_DIM,
                }
            )
            vocabularies[name] = list(range(1, f["vocabulary_size"]))
    feature_layer = mtrec.FeatureEmbedding(
        features, vocabularies=vocabularies, dense_stats=stats
    )
    sizes = MODEL_SIZES[model_name]
    names = [t for t, _ in MODEL_TASKS[model_name]]
    if model_name == "mmoe":
        backbone = mtrec.MMoE(
            names,
            num_experts=sizes["num_experts"],
            expert_units=sizes["expert_units"],
        )
    elif model_name == "ple":
        backbone = mtrec.PLE(
            names,
            num_levels=sizes["num_levels"],
            num_shared_experts=sizes["num_shared_experts"],
            num_task_experts=sizes["num_task_experts"],
            expert_units=sizes["expert_units"],
        )
    else:
        names = ["ctr", "cvr"]
        backbone = mtrec.SharedBottom(names, units=[])
    kwargs = {"tower_units": sizes["tower_units"], **model_options}
    if options["training_metrics"] is not None:
        kwargs["training_metrics"] = options["training_metrics"]
    if model_name == "esmm":
        model = mtrec.ESMM(
            feature_layer,
            backbone,
            mtrec.Task("ctr", "click"),
            mtrec.Task("cvr", "conversion", condition="click"),
            **kwargs,
        )
    else:
        tasks = [mtrec.Task(t, label) for t, label in MODEL_TASKS[model_name]]
        model = mtrec.MultiTaskRanker(feature_layer, backbone, tasks, **kwargs)
    model.compile(**_compile_arguments("mtrec", mtrec_optimizer(mtrec, options, tf), 0))
    options = {
        **options,
        "categorical_path": (
            "categorical int32 ids with num_ids (cast to int64 in the graph, no "
            "lookup), embedding gather"
            if options["encoded_ids"]
            else "categorical int32 ids, IntegerLookup over 1..V-1 (identity), "
            "then embedding gather"
        ),
        "dense_path": "dense, normalization 'none' (values z-scored upstream)",
        "optimizer": type(model.optimizer).__module__
        + "."
        + type(model.optimizer).__name__,
    }
    return model, options


def _class_path(value) -> str:
    return f"{type(value).__module__}.{type(value).__name__}"


def run_worker(args) -> dict:
    """Child process: one library, one model; returns the measurements."""
    tf, build, imported = _start_worker(args)
    meta, arrays = load_arrays(args.data, args.rows)
    labels = [label for _, label in MODEL_TASKS[args.model]]
    train, test, rows = _worker_datasets(args, tf, meta, arrays, labels)

    tf.keras.utils.set_random_seed(SEED)
    begun = time.perf_counter()
    model, options = build(args.model, meta, tf)
    build_seconds = time.perf_counter() - begun

    epoch_seconds, history = _timed_fit(tf, model, train, args.epochs)
    steady = epoch_seconds[1:]
    first_predict_seconds, *predict_seconds = _timed_predicts(
        model, train, 1 + args.predict_passes
    )
    default_optimizer = _class_path(model.optimizer)
    default_steps = getattr(model, "predict_steps_per_execution", 1)
    default_fit_steps = getattr(model, "fit_steps_per_execution", 1)
    # Equal settings: both libraries' predict at EQUAL_STEPS_PER_CALL batches
    # per graph call, through Keras' public compile option (mtrec's own
    # predict_steps_per_execution yields to it). Timed after the defaults.
    model.compile(
        **_compile_arguments(args.worker, model.optimizer, len(labels)),
        steps_per_execution=EQUAL_STEPS_PER_CALL,
    )
    _, *equal_seconds = _timed_predicts(model, train, 1 + args.predict_passes)
    _save_predictions(args, model, test, labels)
    equal_epochs = _equal_fit(args, tf, model, train, len(labels))
    peak_mb = peak_rss_mb()
    # After the peak, as they are not part of the default runs' memory: the
    # bound no library can beat on this core, the model's matmuls alone
    # (matmul_floor; mtrec's side only: its GEMM of the rows of a predict
    # call, 64 batches, added 96 MB to mtrec's ESMM peak when it ran before
    # the peak was read), and a second model (mtrec) and XLA's compiler.
    floor = (
        matmul_floor(tf, model, BATCH_SIZE, default_steps)
        if args.worker == "mtrec"
        else None
    )
    xla_first_seconds, *xla_seconds = _xla_predicts(
        args, tf, model, meta, train, len(labels), 1 + args.predict_passes
    )
    return {
        "side": args.worker,
        "model": args.model,
        "cores": args.num_cores,
        "affinity": sorted(os.sched_getaffinity(0)),
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "rows": rows,
        "epochs": args.epochs,
        "import_seconds": round(imported["seconds"], 3),
        "build_seconds": round(build_seconds, 3),
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "first_epoch_seconds": round(epoch_seconds[0], 3),
        "steady_epoch_seconds": round(statistics.median(steady), 4),
        "train_examples_per_second": examples_per_second(rows, steady),
        "first_predict_seconds": round(first_predict_seconds, 3),
        "predict_seconds": [round(s, 4) for s in predict_seconds],
        "inference_examples_per_second": examples_per_second(rows, predict_seconds),
        "fit_steps_per_call": default_fit_steps,
        "optimizer": default_optimizer,
        "equal_optimizer": _class_path(model.optimizer),
        "equal_epoch_seconds": [round(s, 4) for s in equal_epochs],
        "equal_train_examples_per_second": examples_per_second(rows, equal_epochs),
        "predict_steps_per_call": default_steps,
        "equal_predict_seconds": [round(s, 4) for s in equal_seconds],
        "equal_inference_examples_per_second": examples_per_second(rows, equal_seconds),
        "xla_first_predict_seconds": round(xla_first_seconds, 3),
        "xla_predict_seconds": [round(s, 4) for s in xla_seconds],
        "xla_inference_examples_per_second": examples_per_second(rows, xla_seconds),
        "peak_rss_mb": round(peak_mb, 1),
        "import_rss_mb": round(imported["rss_mb"], 1),
        "rss_above_import_mb": round(peak_mb - imported["rss_mb"], 1),
        "optional_modules_imported": imported["optional_modules"],
        "parameters": int(model.count_params()),
        "training_metrics": [m.name for m in model.metrics],
        "final_loss": round(float(history.history["loss"][-1]), 5),
        "options": options,
        "versions": _versions(args.worker, tf),
        "predictions": str(args.predictions),
        "matmul_floor": floor,
    }


def _start_worker(args) -> tuple:
    """Pins the cores, imports TensorFlow and the library: ``(tf, build,
    imported)``, ``imported`` holding the import's seconds, the peak RSS after
    it and the optional modules TensorFlow imported."""
    os.sched_setaffinity(0, list(range(args.num_cores)))
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.perf_counter()
    if args.worker == "mtrec":
        import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.num_cores)
    tf.config.threading.set_inter_op_parallelism_threads(args.num_cores)
    if args.worker == "deepctr":
        _import_deepctr()
        build = _build_deepctr
    else:
        build = functools.partial(build_mtrec, precision=args.mtrec_precision)
    seconds = time.perf_counter() - started
    # Memory after the imports: TensorFlow and tf-keras import pandas (which
    # imports pyarrow), scipy and PIL when they are installed, so this part
    # depends on the environment, not on the library's model or training.
    imported = {
        "seconds": seconds,
        "rss_mb": peak_rss_mb(),
        "optional_modules": sorted(m for m in OPTIONAL_MODULES if m in sys.modules),
    }
    return tf, build, imported


def _worker_datasets(args, tf, meta: dict, arrays: dict, labels: list) -> tuple:
    """``(train, test, rows)``: the cached training batches (features and
    labels in each library's layout) and the test features' batches."""
    feature_names = [f["name"] for f in meta["features"]]
    categorical = {f["name"] for f in meta["features"] if f["kind"] == "categorical"}
    # Both sides get the ids as int32 arrays, as the data file holds them:
    # DeepCTR's SparseFeat inputs are int32, and mtrec's integer features
    # take int32 or int64 ids (cast to int64 in its graph; the runs before
    # c658d80 gave mtrec int64 arrays, 19 MB more of ESMM's peak).
    # DeepCTR's DenseFeat inputs are (batch, 1). Cast once, before any timing.
    id_dtype = np.int32

    def inputs(split: str) -> dict:
        out = {}
        for name, values in split_arrays(arrays, split, feature_names).items():
            if name in categorical:
                out[name] = values.astype(id_dtype)
            else:
                values = values.astype(np.float32)
                out[name] = values if args.worker == "mtrec" else values[:, None]
        return out

    train_x, test_x = inputs("train"), inputs("test")
    train_y = split_arrays(arrays, "train", labels)
    train_y = {k: v.astype(np.float32) for k, v in train_y.items()}
    if args.worker == "mtrec":
        elements = {**train_x, **train_y}
    else:
        elements = (train_x, tuple(train_y[label] for label in labels))
    # No autotuning (see the module docstring): its iterator teardown is a
    # random fixed cost per pass, not model work.
    fixed = tf.data.Options()
    fixed.autotune.enabled = False
    train = tf.data.Dataset.from_tensor_slices(elements).batch(BATCH_SIZE)
    train = train.cache().prefetch(PREFETCH).with_options(fixed)
    for _ in train:  # fills the cache before anything is timed
        pass
    test = tf.data.Dataset.from_tensor_slices(test_x).batch(BATCH_SIZE)
    test = test.prefetch(PREFETCH).with_options(fixed)
    return train, test, len(train_y[labels[0]])


def _timed_fit(tf, model, train, epochs: int) -> tuple[list[float], object]:
    """``model.fit`` for ``epochs``: each epoch's wall seconds (Keras'
    ``on_epoch_begin`` to ``on_epoch_end``) and the history."""

    timer = epoch_timer_class(tf)()
    history = model.fit(train, epochs=epochs, callbacks=[timer], verbose=0)
    return timer.seconds, history


def _timed_predicts(model, data, passes: int) -> list[float]:
    """Wall seconds of ``passes`` ``model.predict`` passes over ``data``."""
    seconds = []
    for _ in range(passes):
        begun = time.perf_counter()
        model.predict(data, verbose=0)
        seconds.append(time.perf_counter() - begun)
    return seconds


def _xla_predicts(
    args, tf, model, meta: dict, data, outputs: int, passes: int
) -> list[float]:
    """Wall seconds of ``passes`` ``predict`` passes through XLA, the first
    one compiling: each library's public way to it, at its default batches
    per call. DeepCTR's model recompiled with Keras' ``jit_compile=True``
    (every predict step compiled, once per batch shape); mtrec's model built
    again with ``predict_jit_compile=True`` (its input checks run before the
    compiled model; batches padded to a power of two) and the trained
    weights."""
    if args.worker == "mtrec":
        compiled, _ = build_mtrec(
            args.model,
            meta,
            tf,
            precision=args.mtrec_precision,
            predict_jit_compile=True,
        )
        compiled(next(iter(data)))  # builds the weights
        compiled.set_weights(model.get_weights())
    else:
        model.compile(
            **_compile_arguments(args.worker, model.optimizer, outputs),
            jit_compile=True,
        )
        compiled = model
    return _timed_predicts(compiled, data, passes)


def _save_predictions(args, model, test, labels: list) -> None:
    """The test predictions, one array per label, for the orchestrator's AUC."""
    predicted = model.predict(test, verbose=0)
    if args.worker == "mtrec":
        outputs = [predicted[t] for t, _ in MODEL_TASKS[args.model]]
    else:
        outputs = list(predicted)
    np.savez(
        args.predictions,
        **{label: np.asarray(p).reshape(-1) for label, p in zip(labels, outputs)},
    )


def _equal_fit(args, tf, model, train, outputs: int) -> list[float]:
    """Seconds of the equal-settings training epochs after one that traces.

    After the predictions are saved (these epochs do not change the AUC):
    16 steps per call (compiled so already) and the same optimizer on both
    sides (tf.keras' Adam, which DeepCTR's model already has; a new one on
    mtrec's when its default is the fused one). The traced epoch also
    creates a new optimizer's slots.
    """
    if not isinstance(model.optimizer, tf.keras.optimizers.Adam):
        model.compile(
            **_compile_arguments(
                args.worker, tf.keras.optimizers.Adam(LEARNING_RATE), outputs
            ),
            steps_per_execution=EQUAL_STEPS_PER_CALL,
        )
    seconds, _ = _timed_fit(tf, model, train, EQUAL_EPOCHS + 1)
    return seconds[1:]


def _compile_arguments(side: str, optimizer, outputs: int) -> dict:
    """What each side's model is compiled with, at build and again for the
    equal-settings passes (with its trained ``optimizer``): mtrec computes
    its tasks' losses itself; DeepCTR gets a binary cross-entropy loss and
    metric per one of its ``outputs``."""
    if side == "mtrec":
        return {"optimizer": optimizer}
    return {
        "optimizer": optimizer,
        "loss": ["binary_crossentropy"] * outputs,
        "metrics": ["binary_crossentropy"],
    }


def _versions(side: str, tf) -> dict:
    import importlib.metadata

    library = "deepctr" if side == "deepctr" else "mtrec"
    return {
        "module": sys.modules[library].__file__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tf_keras": importlib.metadata.version("tf-keras"),
        "library": importlib.metadata.version(library),
        "numpy": np.__version__,
    }
