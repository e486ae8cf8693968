"""`fluxbus up`: NATS, the embedded cluster and the services start, and
everything stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from fluxbus_cli.up import stack_up
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_kubelite.testing import kubectl_binary


async def test_up_starts_nats_and_an_embedded_cluster_kubectl_can_use(tmp_path: Path):
    async with stack_up(tmp_path / "state", services=(), quiet=True) as stack:
        bus = await Bus.connect(BusSettings(url=stack.nats_url), "up-test")
        await bus.close()
        out = await asyncio.to_thread(
            subprocess.run,
            [
                kubectl_binary(),
                "--kubeconfig",
                stack.kubeconfig,
                "--cache-dir",
                str(tmp_path / "kc"),
                "get",
                "namespaces",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "namespace/default" in out.stdout
        children = list(stack.children)
    assert [c.name for c in children] == ["nats", "kubelite"]
    assert all(c.proc.returncode is not None for c in children)


async def test_up_keeps_its_state_across_a_restart(tmp_path: Path):
    state = tmp_path / "state"
    async with stack_up(state, services=(), quiet=True) as stack:
        bus = await Bus.connect(BusSettings(url=stack.nats_url), "up-test")
        await bus.put_secret("flux-system", "kept", {"kind": "Secret"})
        await bus.close()
    async with stack_up(state, services=(), quiet=True) as stack:
        bus = await Bus.connect(BusSettings(url=stack.nats_url), "up-test")
        assert await bus.get_secret("flux-system", "kept") == {"kind": "Secret"}
        await bus.close()


def test_sigterm_stops_up_and_every_child(tmp_path: Path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from fluxbus_cli.up import main; "
            f"sys.exit(main(state_dir={str(tmp_path / 'state')!r}))",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "fluxbus is up" in line:
                break
        else:
            raise AssertionError("".join(lines))
        children = subprocess.run(
            ["pgrep", "-f", str(tmp_path / "state")], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2  # nats-server and kubelite at least
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        left = subprocess.run(
            ["pgrep", "-f", str(tmp_path / "state")], capture_output=True, text=True
        ).stdout.split()
        assert left == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
