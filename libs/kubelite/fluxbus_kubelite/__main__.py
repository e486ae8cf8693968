"""`fluxbus-kubelite`: serve the kubelite Kubernetes API on 127.0.0.1.

    fluxbus-kubelite --port 6443 --kubeconfig /tmp/kc [--state FILE] [--no-simulate]

The kubeconfig is written once the server listens, so
`KUBECONFIG=/tmp/kc kubectl get ns` works as soon as the file exists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import structlog

from .controllers import SimulationConfig
from .server import KubeliteServer


def _configure_logging() -> None:
    renderer: structlog.typing.Processor
    if sys.stdout.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fluxbus-kubelite", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=6443, help="port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    p.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for kubectl")
    p.add_argument("--state", default=None, help="SQLite file that keeps objects across restarts")
    p.add_argument(
        "--no-simulate", action="store_true", help="do not simulate workload controllers"
    )
    p.add_argument(
        "--sim-delay", type=float, default=0.1, help="seconds before workloads get status"
    )
    p.add_argument(
        "--broken-image",
        default=r":broken$",
        help="regex: images matching it never become ready (default: tag 'broken')",
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    log = structlog.get_logger("kubelite")
    sim = SimulationConfig(
        enabled=not args.no_simulate, delay=args.sim_delay, broken_image=args.broken_image
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with KubeliteServer(
        port=args.port,
        host=args.host,
        kubeconfig=args.kubeconfig,
        state=args.state,
        simulate=not args.no_simulate,
        simulation=sim,
    ) as srv:
        log.info("kubelite.listening", url=srv.url, kubeconfig=args.kubeconfig, state=args.state)
        await stop.wait()
        log.info("kubelite.stopping")


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `fluxbus-kubelite`."""
    _configure_logging()
    args = parse_args(argv)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
