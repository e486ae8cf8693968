"""`fluxbus delete` asks before deleting (Flux's habit: deleting a Kustomization
prunes what it applied) unless -s/--silent, and refuses when there is no
terminal to ask on."""

from __future__ import annotations

import asyncio
import os

import pytest
from cli_helpers import FLUXBUS, MANIFESTS, Cli, Ran

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings

GIT = "gitrepository.flux-system.podinfo"


async def on_a_terminal(url: str, answer: str, *args: str) -> Ran:
    """Run `fluxbus` with stdin on a pseudo-terminal where `answer` is typed."""
    controller_fd, terminal_fd = os.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            str(FLUXBUS),
            *args,
            stdin=terminal_fd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FLUXBUS_NATS_URL": url},
        )
        os.close(terminal_fd)
        os.write(controller_fd, answer.encode())
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        os.close(controller_fd)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize(
    ("answer", "code", "kept"),
    [
        pytest.param("y\n", 0, False, id="yes-deletes"),
        pytest.param("n\n", 1, True, id="no-keeps"),
        pytest.param("\n", 1, True, id="enter-means-no"),
    ],
)
async def test_delete_asks_on_the_terminal_first(
    cli: Cli, bus: Bus, bus_settings: BusSettings, answer, code, kept
):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))

    result = await on_a_terminal(bus_settings.url, answer, "delete", "source", "git", "podinfo")

    assert "Are you sure you want to delete gitrepository/flux-system/podinfo? [y/N]" in (
        result.stderr
    )
    assert result.code == code, result.stderr
    assert (await bus.get_object(GIT) is not None) == kept
    if kept:
        assert "✗ aborted: nothing deleted" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("ks", "podinfo"), id="by-name"),
        pytest.param(("-f", str(MANIFESTS / "podinfo.yaml")), id="from-files"),
    ],
)
async def test_delete_without_a_terminal_refuses_unless_silent(cli: Cli, bus: Bus, args):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))

    refused = await cli("delete", *args)
    assert refused.code == 1
    assert "stdin is not a terminal to confirm on (give -s/--silent" in refused.stderr
    assert await bus.get_object("kustomization.flux-system.podinfo") is not None

    done = await cli("delete", *args, "-s")
    assert done.code == 0, done.stderr
    assert await bus.get_object("kustomization.flux-system.podinfo") is None
