"""Run a devtenant until SIGINT/SIGTERM:

    python -m devtenant --port 0 --seed 7 --users 200 [--latency-ms 20] [--fault-rate 0.01] [--unconsented]

Once it listens it prints exactly one line of JSON on stdout (see `server.ready_info`: authority,
graph, login, tenant_id, domain, client_id, client_secret, ca_file, seed, users, helpdesk_group_id,
admins_group_id) and flushes it. Everything else (logs) goes to stderr; logs never contain the client
secret or tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from devtenant import profiling
from devtenant.server import start_devtenant
from devtenant.state import DevTenantConfig

logger = logging.getLogger("devtenant")


def _bounded(kind: Callable[[str], float], low: float, high: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, not {text}")
        return value

    return parse


def _endpoint_latency(text: str) -> tuple[str, float]:
    path, sep, ms = text.partition("=")
    if not sep or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"--endpoint-latency-ms takes PATH=MS such as /auditLogs/signIns=3000, "
                                         f"not {text!r}")
    return path, _bounded(float, 0, 120_000, "--endpoint-latency-ms")(ms)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtenant",
        description="A local stand-in for Microsoft Entra ID and Microsoft Graph, serving a generated "
                    "organisation over https.")
    parser.add_argument("--port", type=_bounded(int, 0, 65535, "--port"), default=0,
                        help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=DevTenantConfig.seed,
                        help="seed of the generated organisation")
    parser.add_argument("--users", type=_bounded(int, 20, 50_000, "--users"), default=DevTenantConfig.users,
                        help="number of people in the organisation (20..50000)")
    parser.add_argument("--latency-ms", type=_bounded(float, 0, 60_000, "--latency-ms"), default=0.0,
                        help="added latency of every Graph request, in milliseconds")
    parser.add_argument("--endpoint-latency-ms", action="append", type=_endpoint_latency, default=None,
                        metavar="PATH=MS",
                        help="extra latency of the endpoints under a path, e.g. /auditLogs/signIns=3000 (repeatable; "
                             "default: sign-in logs 1500 ms, as Microsoft's reports API is slow)")
    parser.add_argument("--fault-rate", type=_bounded(float, 0, 1, "--fault-rate"), default=0.0,
                        help="share of Graph requests that fail transiently (0..1)")
    parser.add_argument("--unconsented", action="store_true",
                        help="start before admin consent: client-credentials tokens are refused until an "
                             "admin consents at /{tenant}/v2.0/adminconsent")
    parser.add_argument("--ca-dir", type=Path, default=None,
                        help="directory for the CA certificate file (default: a new temporary directory)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="between SIGUSR1 and SIGUSR2, keep a cProfile (written to FILE) and the CPU per kind of "
                             "Graph request (FILE.requests.json), for benchmarks")
    parser.add_argument("--request-cpu", type=Path, default=None, metavar="FILE",
                        help="the same without the cProfile (which slows devtenant down): only FILE.requests.json")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    config = DevTenantConfig(seed=args.seed, users=args.users, latency_ms=args.latency_ms,
                             fault_rate=args.fault_rate, unconsented=args.unconsented)
    if args.endpoint_latency_ms is not None:
        config = replace(config, endpoint_latency_ms=tuple(args.endpoint_latency_ms))
    if args.profile is not None or args.request_cpu is not None:
        profiling.PROFILER = profiling.RequestProfiler(args.profile or args.request_cpu, cprofile=bool(args.profile))
        profiling.PROFILER.install()
    try:
        running = await start_devtenant(config, host=args.host, port=args.port, ca_dir=args.ca_dir)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, args.port, exc.strerror or exc)
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        sys.stdout.write(json.dumps(running.ready) + "\n")
        sys.stdout.flush()
        await stopping.wait()
        logger.info("stopping")
    finally:
        await running.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
