"""`fluxbus-kubelite`: serve the kubelite Kubernetes API on 127.0.0.1.

    fluxbus-kubelite --port 6443 --kubeconfig /tmp/kc [--state FILE] [--no-simulate]

The kubeconfig (mode 600) is written once the server listens, so
`KUBECONFIG=/tmp/kc kubectl get ns` works as soon as the file exists. kubelite
serves HTTPS with its own CA (in the kubeconfig), and every API request must
carry the bearer token written into it (401 otherwise). The token is
FLUXBUS_KUBELITE_TOKEN when set, else the one of the kubeconfig already at that
path (a restart keeps clients that loaded it working), else a new random one;
the TLS material is kept in `--tls-file` (default `<state>.tls.pem` with
`--state`, else made anew at each start). `--host 0.0.0.0` (in a container)
and `--server-url https://kubelite:6443` (the address clients use, written into
the kubeconfig and the certificate) serve other machines. A port in use is one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping

import structlog

from fluxbus_common.entrypoint import EXIT_SETTINGS
from fluxbus_common.httpserver import ListenError

from .controllers import SimulationConfig
from .server import KubeliteServer, kubeconfig_token

TOKEN_ENV = "FLUXBUS_KUBELITE_TOKEN"
MIN_REUSED_TOKEN = 32
"""A token found in an existing kubeconfig is kept only when at least this long
(older kubelites wrote the well-known token "kubelite")."""


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
    p.add_argument("--port", type=int, default=6443, help="port to listen on (0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default loopback only; 0.0.0.0 in a container)",
    )
    p.add_argument(
        "--server-url",
        default=None,
        help="server URL written into the kubeconfig (default http://<host>:<port>)",
    )
    p.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for kubectl")
    p.add_argument("--state", default=None, help="SQLite file that keeps objects across restarts")
    p.add_argument(
        "--tls-file",
        default=None,
        help="PEM file keeping the TLS CA, certificate and key (default <state>.tls.pem)",
    )
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


def choose_token(kubeconfig: str, env: Mapping[str, str]) -> str | None:
    """FLUXBUS_KUBELITE_TOKEN, else a strong token of the kubeconfig already there,
    else None (the server makes a new one)."""
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    found = kubeconfig_token(kubeconfig)
    return found if found and len(found) >= MIN_REUSED_TOKEN else None


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
        token=choose_token(args.kubeconfig, os.environ),
        server_url=args.server_url,
        tls_file=args.tls_file or (f"{args.state}.tls.pem" if args.state else None),
    ) as srv:
        log.info("kubelite.listening", url=srv.url, kubeconfig=args.kubeconfig, state=args.state)
        await stop.wait()
        log.info("kubelite.stopping")


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `fluxbus-kubelite`."""
    _configure_logging()
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except ListenError as e:
        print(
            f"fluxbus-kubelite: cannot listen on {e.addr}: {e.reason}; "
            "pass --port (0 picks a free one) or --host",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_SETTINGS) from None


if __name__ == "__main__":
    main()
