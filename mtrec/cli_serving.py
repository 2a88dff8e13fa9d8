"""``mtrec serve`` and ``mtrec loadtest``: the local server and its load test."""

import logging
import pathlib
import sys

from mtrec.cli_common import wait_for_a_stop_signal


def cmd_serve(args) -> int:
    from mtrec.serving import ServerOptions
    from mtrec.serving import serve

    name = args.name or pathlib.Path(args.export_base).resolve().name
    try:
        options = ServerOptions(
            host=args.host,
            rest_port=None if args.no_rest else args.rest_port,
            grpc_port=None if args.no_grpc else args.grpc_port,
            max_request_bytes=args.max_request_bytes,
            max_batch_size=args.max_batch_size or None,
            grpc_workers=args.grpc_workers,
            body_timeout_seconds=args.body_timeout_seconds,
            enable_batching=args.enable_batching,
            batching_parameters_file=args.batching_parameters_file,
        )
        server = serve(
            args.export_base,
            name,
            options,
            num_versions=args.num_versions,
            poll_seconds=args.poll_seconds,
            max_load_retries=args.max_load_retries,
            load_retry_seconds=args.load_retry_seconds,
        )
    except (OSError, ValueError) as err:
        print(f"mtrec serve: error: {err}", file=sys.stderr)
        return 2
    versions = server.manager.available_versions()
    print(f"serving model {name!r} from {args.export_base} (versions {versions})")
    if server.rest_url:
        print(f"REST  {server.rest_url}/v1/models/{name}", flush=True)
    if server.grpc_target:
        print(f"gRPC  {server.grpc_target}", flush=True)
    wait_for_a_stop_signal()
    print("stopping: finishing requests in flight", flush=True)
    server.stop()
    return 0


def cmd_loadtest(args) -> int:
    import json

    from mtrec.serving import LoadTestConfig
    from mtrec.serving import run_load_test

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    try:
        config = LoadTestConfig(
            protocol=args.protocol,
            port=args.port,
            model=args.name,
            data=args.data,
            host=args.host,
            clients=args.clients,
            duration_s=args.duration,
            warmup_s=args.warmup,
            batch_size=args.batch_size,
            signature=args.signature,
            rest_format=args.format,
            seed=args.seed,
            allow_remote=args.allow_remote,
        )
    except ValueError as err:
        print(f"mtrec loadtest: error: {err}", file=sys.stderr)
        return 2
    report = run_load_test(config)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0 if report["errors"] == 0 else 1


def add_serving_commands(sub) -> None:
    """Registers ``serve`` and ``loadtest`` on the CLI's subparsers."""
    _add_serve_parser(sub)
    _add_loadtest_parser(sub)


def _add_serve_parser(sub) -> None:
    """``mtrec serve``: the local TF-Serving-compatible server."""
    srv = sub.add_parser(
        "serve",
        help="serve an export base over TF Serving's REST and gRPC APIs (local)",
    )
    _add_serve_address_arguments(srv)
    _add_serve_request_arguments(srv)
    _add_serve_timing_arguments(srv)
    srv.set_defaults(func=cmd_serve)


def _add_serve_address_arguments(srv) -> None:
    """What ``mtrec serve`` serves and where: the export base, name, host, ports."""
    srv.add_argument("export_base", help="folder of integer version folders")
    srv.add_argument(
        "--name", default=None, help="model name in URLs; default: the base's name"
    )
    srv.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    srv.add_argument(
        "--rest-port", type=int, default=8501, help="0 picks a free port (8501)"
    )
    srv.add_argument(
        "--grpc-port", type=int, default=8500, help="0 picks a free port (8500)"
    )
    srv.add_argument("--no-rest", action="store_true", help="gRPC only")
    srv.add_argument("--no-grpc", action="store_true", help="REST only")


def _add_serve_request_arguments(srv) -> None:
    """``mtrec serve``'s request size limits, versions served and request batching."""
    srv.add_argument(
        "--max-batch-size",
        type=int,
        default=1024,
        help="largest batch per request, 0 for no limit (1024)",
    )
    srv.add_argument(
        "--max-request-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="largest REST body / gRPC message (4 MiB)",
    )
    srv.add_argument(
        "--num-versions", type=int, default=1, help="serve the N newest versions (1)"
    )
    srv.add_argument(
        "--enable_batching",
        action="store_true",
        help="merge concurrent predict requests into one model call (as TF Serving)",
    )
    srv.add_argument(
        "--batching_parameters_file",
        default=None,
        help="BatchingParameters text proto, e.g. serving/batching_parameters.txt",
    )


def _add_serve_timing_arguments(srv) -> None:
    """``mtrec serve``'s version polling, gRPC threads, body timeout, load retries."""
    srv.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="how often to look for new versions, 0 to never (1)",
    )
    srv.add_argument("--grpc-workers", type=int, default=8, help="gRPC threads (8)")
    srv.add_argument(
        "--body-timeout-seconds",
        type=float,
        default=30.0,
        help="a REST body not received whole by then gets 408 (30)",
    )
    srv.add_argument(
        "--max-load-retries",
        type=int,
        default=5,
        help="tries after a version fails to load (5, as TF Serving)",
    )
    srv.add_argument(
        "--load-retry-seconds",
        type=float,
        default=60.0,
        help="wait before each (60, as TF Serving)",
    )


def _add_loadtest_parser(sub) -> None:
    """``mtrec loadtest``: concurrent predict load on a local server."""
    lt = sub.add_parser(
        "loadtest",
        help="concurrent predict load on a local server; prints QPS and latency",
    )
    lt.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    lt.add_argument("--host", default="127.0.0.1")
    lt.add_argument("--port", type=int, required=True)
    lt.add_argument("--name", required=True, help="model name")
    lt.add_argument(
        "--data", required=True, help="click log the candidate batches come from"
    )
    lt.add_argument("--clients", type=int, default=4, help="concurrent clients (4)")
    lt.add_argument(
        "--duration", type=float, default=30.0, help="measured seconds (30)"
    )
    lt.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds first (2)"
    )
    lt.add_argument("--batch-size", type=int, default=100, help="candidates (100)")
    lt.add_argument("--signature", default="serving_default")
    lt.add_argument(
        "--format", choices=("row", "columnar"), default="row", help="REST body"
    )
    lt.add_argument("--seed", type=int, default=0)
    lt.add_argument("--out", default=None, help="also write the JSON report here")
    lt.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a host that is not this machine",
    )
    lt.set_defaults(func=cmd_loadtest)
