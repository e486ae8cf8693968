"""Fixtures for the CLI tests: `cli` runs `fluxbus` through its real entry point
in-process (typer's CliRunner, in a worker thread because each command runs its
own `asyncio.run`), `fluxbus` runs the installed console script in a
subprocess; both point at the fixture's nats-server."""

from __future__ import annotations

import asyncio

import pytest
from cli_helpers import Cli, Ran, run_fluxbus
from typer.testing import CliRunner

from fluxbus_cli.__main__ import normalize_argv
from fluxbus_cli.app import app
from fluxbus_common.settings import BusSettings


@pytest.fixture
def cli(bus_settings: BusSettings) -> Cli:
    """`await cli("get", "ks", input=...)`: the typer app in-process."""
    runner = CliRunner()
    env = {"FLUXBUS_NATS_URL": bus_settings.url}

    async def invoke(*args: str, input: str | None = None) -> Ran:
        result = await asyncio.to_thread(
            runner.invoke, app, normalize_argv(list(args)), input=input, env=env
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def fluxbus(bus_settings: BusSettings) -> Cli:
    """`await fluxbus("apply", "-f", path)`: the console script in a subprocess."""

    async def invoke(*args: str, input: str | None = None) -> Ran:
        return await run_fluxbus(*args, url=bus_settings.url, input=input)

    return invoke
