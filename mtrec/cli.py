"""The ``mtrec`` command line: thin wrappers over library functions."""

import argparse
import logging
import os
import pathlib
import sys
import tempfile
import time

from mtrec.cli_analysis import add_analysis_commands
from mtrec.cli_common import add_config_argument
from mtrec.cli_common import resolve_config
from mtrec.cli_common import wait_for_a_stop_signal
from mtrec.cli_serving import add_serving_commands
from mtrec.shipped import shipped_config


def cmd_generate(args) -> int:
    from mtrec.data.synthetic import generate_click_log
    from mtrec.data.table_writer import write_table

    start = time.perf_counter()
    try:
        df = generate_click_log(args.rows, seed=args.seed)
        path = write_table(df, args.out, args.format)
    except ValueError as err:  # --rows below 1, an output suffix it cannot write
        print(f"mtrec generate: error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {len(df):,} rows to {path} in {time.perf_counter() - start:.1f}s "
        f"(CTR {df['click'].mean():.4f}, "
        f"CVR|click {df.loc[df['click'] == 1, 'conversion'].mean():.4f})"
    )
    return 0


def cmd_cluster_server(args) -> int:

    from mtrec.training import cluster_server

    server = cluster_server()
    print(f"serving {server.target} until SIGTERM or SIGINT", flush=True)
    wait_for_a_stop_signal()
    print("stopping", flush=True)
    # A tf.distribute.Server cannot be stopped in process: exit without
    # waiting for its threads.
    os._exit(0)


def cmd_train(args) -> int:
    from mtrec.training import load_config
    from mtrec.training import train

    config = load_config(resolve_config(args.config), args.set or [])
    result = train(config, run_dir=args.run_dir, overwrite=args.overwrite)
    return _report(result)


def _report(result) -> int:
    from mtrec.training import format_metrics

    if not result.chief:
        print("trained as a worker of multi_worker_mirrored; the chief writes the run")
        return 0
    print(format_metrics(result.metrics["eval"]))
    print(f"run directory: {result.run_dir}")
    if result.export_path:
        print(f"exported SavedModel: {result.export_path}")
    return 0


def cmd_prepare(args) -> int:
    from mtrec.training import encoded_train_part
    from mtrec.training import load_config
    from mtrec.training import prepare
    from mtrec.training import prepare_files

    start = time.perf_counter()
    config = load_config(resolve_config(args.config), args.set or [])
    encoded = None
    if config.train.encode_ids:  # the encoded shards need the vocabularies
        with tempfile.TemporaryDirectory(prefix="mtrec-prepare-") as vocabularies:
            prepared = prepare(config, preprocessing_dir=vocabularies)
            files = prepared.source.prepared
            encoded = encoded_train_part(prepared, files.train)
    else:
        files = prepare_files(config)
    named = {"train": files.train, "eval": files.eval}
    if files.validation:
        named["validation"] = files.validation
    if encoded:
        named["encoded"] = encoded
    for name, (data, part) in named.items():
        info = data.part(part)
        print(
            f"{name:<10} {info.rows:>11,} rows in {len(info.shards)} shard(s) "
            f"({info.rows_dropped:,} dropped)  {data.directory}"
        )
    print(f"prepared in {time.perf_counter() - start:.1f}s")
    return 0


def cmd_resume(args) -> int:
    from mtrec.training import resume_run

    return _report(resume_run(args.run_dir, overrides=args.set or []))


def cmd_export(args) -> int:
    from mtrec.training import export_run

    path = export_run(args.run_dir, args.export_base)
    print(f"exported SavedModel: {path}")
    return 0


def cmd_inspect(args) -> int:
    from mtrec.training import inspect_run

    gates = inspect_run(args.run_dir)
    for name, g in gates.items():
        weights = " ".join(f"{w:.3f}" for w in g["mean_weight"])
        print(
            f"{name:<20} entropy {g['entropy']:.3f}/{g['max_entropy']:.3f}  "
            f"mean weights [{weights}]"
        )
    print(f"gate statistics written to {pathlib.Path(args.run_dir) / 'metrics.json'}")
    return 0


def cmd_demo(args) -> int:
    """Generate a log, train ESMM, evaluate vs the oracle, export, reload, score."""
    from mtrec.training import format_metrics
    from mtrec.training import train

    data_path = _demo_click_log(args)
    config = _demo_config(args, data_path)
    print(
        f"[2/4] training ESMM ({config.model.backbone} backbone, "
        f"{config.train.epochs} epochs)"
    )
    result = train(config)
    print("[3/4] held-out evaluation (oracle = AUC of the true probabilities):")
    print(format_metrics(result.metrics["eval"]))
    print(
        f"[4/4] exported {result.export_path}; reloading with tf.saved_model.load "
        "and scoring raw rows"
    )
    print(_demo_scores(result.export_path, data_path).to_string(index=False))
    print(f"run directory: {result.run_dir}")
    return 0


#: Click log columns the demo prints beside the served scores.
_DEMO_COLUMNS = (
    "user_id",
    "item_id",
    "position",
    "click",
    "conversion",
    "true_ctr",
    "true_cvr",
)


def _demo_click_log(args) -> pathlib.Path:
    """Step 1 of the demo: the click log in ``--workdir``, generated unless there."""
    from mtrec.data.synthetic import generate_click_log
    from mtrec.data.table_writer import write_table

    data_path = pathlib.Path(args.workdir) / "data" / f"click_log_{args.rows}.csv"
    if not data_path.is_file():
        print(f"[1/4] generating {args.rows:,} impressions -> {data_path}")
        write_table(generate_click_log(args.rows, seed=args.seed), data_path)
    else:
        print(f"[1/4] using the click log already generated at {data_path}")
    return data_path


def _demo_config(args, data_path: pathlib.Path):
    """The shipped ESMM config pointed at the demo's data, runs and exports."""
    from mtrec.training import load_config

    workdir = pathlib.Path(args.workdir)
    overrides = [
        f"data.train={data_path}",
        f"runs_dir={workdir / 'runs'}",
        f"export.base={workdir / 'exports' / 'esmm'}",
        "export.publish=true",  # the demo serves what it trained
        *(args.set or []),
    ]
    return load_config(shipped_config("esmm"), overrides)


def _demo_scores(export_path, data_path: pathlib.Path):
    """The first 5 click log rows with the reloaded SavedModel's scores added as
    ``p_<output>`` columns (rounded to 4 decimals)."""
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    rows = pd.read_csv(data_path, nrows=5)
    inputs = _serving_inputs(serve, rows)
    scores = {k: v.numpy() for k, v in serve(**inputs).items()}
    table = rows[list(_DEMO_COLUMNS)].copy()
    for name in sorted(scores):
        table[f"p_{name}"] = np.round(scores[name], 4)
    return table


def _serving_inputs(serve, rows) -> dict:
    """Raw click log rows as the tensors a serving signature takes (missing
    values become ``""`` or 0)."""
    import tensorflow as tf

    inputs = {}
    for name, spec in serve.structured_input_signature[1].items():
        values = rows[name].fillna("" if spec.dtype == tf.string else 0).to_numpy()
        inputs[name] = tf.constant(
            values.astype(str) if spec.dtype == tf.string else values, dtype=spec.dtype
        )
    return inputs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtrec", description="Multi-task ranking on TensorFlow."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate_parser(sub)
    _add_train_parser(sub)
    _add_cluster_server_parser(sub)
    _add_prepare_parser(sub)
    _add_run_dir_parsers(sub)
    add_analysis_commands(sub)
    _add_demo_parser(sub)
    add_serving_commands(sub)
    return parser


def _add_generate_parser(sub) -> None:
    """``mtrec generate``: a synthetic click log."""
    gen = sub.add_parser(
        "generate", help="write a synthetic click log with true probabilities"
    )
    gen.add_argument("--rows", type=int, required=True)
    gen.add_argument(
        "--out", required=True, help="output file (.csv, .csv.gz or .parquet)"
    )
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument(
        "--format", choices=("csv", "parquet"), default=None, help="default: from --out"
    )
    gen.set_defaults(func=cmd_generate)


def _add_train_parser(sub) -> None:
    """``mtrec train``: train, evaluate and export from a config."""
    tr = sub.add_parser("train", help="train, evaluate and export from a YAML config")
    add_config_argument(tr)
    tr.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override, e.g. train.epochs=1",
    )
    tr.add_argument(
        "--run-dir", default=None, help="default: <runs_dir>/<name>-<timestamp>"
    )
    tr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --run-dir (refused without it)",
    )
    tr.set_defaults(func=cmd_train)


def _add_cluster_server_parser(sub) -> None:
    """``mtrec cluster-server``: a ps or worker task of a parameter_server cluster."""
    cs = sub.add_parser(
        "cluster-server",
        help="run the ps or worker task of a parameter_server cluster from "
        "TF_CONFIG (the chief runs mtrec train)",
    )
    cs.set_defaults(func=cmd_cluster_server)


def _add_prepare_parser(sub) -> None:
    """``mtrec prepare``: a config's data files as validated TFRecord shards."""
    prep = sub.add_parser(
        "prepare",
        help="validate a config's data files and write them as TFRecord shards "
        "(mtrec train runs it; cached by content); with train.encode_ids also "
        "the train shards with ids encoded",
    )
    add_config_argument(prep)
    prep.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key"
    )
    prep.set_defaults(func=cmd_prepare)


def _add_run_dir_parsers(sub) -> None:
    """``mtrec resume``, ``export`` and ``inspect``: commands on a run directory."""
    rs = sub.add_parser(
        "resume", help="continue an interrupted run from its last complete epoch"
    )
    rs.add_argument("run_dir")
    rs.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="change train.distribution.* (e.g. resume on a cluster) or "
        "train.epochs (train longer)",
    )
    rs.set_defaults(func=cmd_resume)

    ex = sub.add_parser(
        "export", help="export a run's last checkpoint as a new SavedModel version"
    )
    ex.add_argument("run_dir")
    ex.add_argument(
        "--export-base", default=None, help="default: the run config's export.base"
    )
    ex.set_defaults(func=cmd_export)

    ins = sub.add_parser(
        "inspect", help="per-task gate weights per expert of a run (MoE backbones)"
    )
    ins.add_argument("run_dir")
    ins.set_defaults(func=cmd_inspect)


def _add_demo_parser(sub) -> None:
    """``mtrec demo``: the whole job end to end on a generated click log."""
    demo = sub.add_parser(
        "demo", help="the main job: generate, train ESMM, evaluate, export, reload"
    )
    demo.add_argument("--rows", type=int, default=1_000_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--workdir", default=".")
    demo.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override the ESMM config"
    )
    demo.set_defaults(func=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)
    from mtrec.quiet import install_quiet_output

    # TF_CPP_MIN_LOG_LEVEL=3 (set here unless the user set it): TF's C++ log
    # would print a Python traceback for a bad row streamed through tf.data;
    # mtrec reports it as one clear line instead.
    install_quiet_output()
    from mtrec.data.schema import DataError
    from mtrec.training import ConfigError
    from mtrec.training import NonFiniteLossError

    try:
        return args.func(args)
    except (
        DataError,
        ConfigError,
        NonFiniteLossError,
        FileNotFoundError,
        FileExistsError,
    ) as err:
        print(f"mtrec {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
