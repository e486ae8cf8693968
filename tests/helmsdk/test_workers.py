"""The worker processes: limits, crashes and replacement, concurrency, shutdown,
and the engine without the helm extra."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fluxbus_common.testing.plugin import wait_for
from fluxbus_helmsdk import (
    HelmEngine,
    HelmEngineError,
    WorkerCrashed,
    WorkerLimitExceeded,
    WorkerLimits,
)
from fluxbus_helmsdk.errors import UNAVAILABLE_MESSAGE
from fluxbus_helmsdk.testing import make_chart, package_chart

# 10^8 template iterations without allocating: many seconds of work.
SLOW = {"slow.yaml": "{{- range until 10000 }}{{- range until 10000 }}{{- end }}{{- end }}a: 1\n"}
# A string doubled 30 times: 16 GiB wanted.
HUNGRY = {
    "hungry.yaml": '{{- $s := "0123456789abcdef" }}{{- range until 30 }}{{- $s = print $s $s }}'
    "{{- end }}size: {{ len $s }}\n"
}


def chart(tmp_path: Path, templates: dict[str, str] | None = None) -> bytes:
    source = make_chart(tmp_path / "src", "demo", templates=templates)
    return package_chart(source, tmp_path / "dist").read_bytes()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def render(engine: HelmEngine, data: bytes) -> dict[str, str]:
    return await engine.render(data, {}, release_name="r", namespace="n")


async def test_a_worker_serves_many_calls_and_close_stops_it(tmp_path: Path) -> None:
    data = chart(tmp_path)
    async with HelmEngine(WorkerLimits(workers=1)) as engine:
        for _ in range(5):
            await render(engine, data)
        (pid,) = engine.worker_pids()
    assert not alive(pid)


async def test_a_call_over_the_time_limit_kills_the_worker_and_the_next_call_works(
    tmp_path: Path,
) -> None:
    slow, fine = chart(tmp_path / "slow", SLOW), chart(tmp_path / "fine")
    async with HelmEngine(WorkerLimits(workers=1, timeout=1.0)) as engine:
        await render(engine, fine)
        (first,) = engine.worker_pids()
        with pytest.raises(WorkerLimitExceeded) as caught:
            await render(engine, slow)
        assert caught.value.limit == "time"
        assert not alive(first)
        assert await render(engine, fine)
        assert engine.worker_pids() != [first]


async def test_a_call_over_the_memory_limit_is_stopped_and_the_next_call_works(
    tmp_path: Path,
) -> None:
    hungry, fine = chart(tmp_path / "hungry", HUNGRY), chart(tmp_path / "fine")
    async with HelmEngine(WorkerLimits(workers=1, memory_bytes=384 * 2**20)) as engine:
        with pytest.raises(WorkerLimitExceeded) as caught:
            await render(engine, hungry)
        assert caught.value.limit == "memory"
        assert await render(engine, fine)


async def test_a_worker_killed_mid_call_is_a_crash_and_is_replaced(tmp_path: Path) -> None:
    slow, fine = chart(tmp_path / "slow", SLOW), chart(tmp_path / "fine")
    async with HelmEngine(WorkerLimits(workers=1, timeout=60.0)) as engine:
        await render(engine, fine)
        call = asyncio.create_task(render(engine, slow))
        (victim,) = await wait_for(lambda: engine.worker_pids(busy=True), message="a busy worker")
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerCrashed):
            await call
        assert await render(engine, fine)
        assert victim not in engine.worker_pids()


async def test_a_cancelled_call_kills_its_worker_and_the_next_call_works(
    tmp_path: Path,
) -> None:
    slow, fine = chart(tmp_path / "slow", SLOW), chart(tmp_path / "fine")
    async with HelmEngine(WorkerLimits(workers=1, timeout=60.0)) as engine:
        call = asyncio.create_task(render(engine, slow))
        (busy,) = await wait_for(lambda: engine.worker_pids(busy=True), message="a busy worker")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not alive(busy)
        assert await render(engine, fine)


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"workers": 0}, id="no-workers"),
        pytest.param({"timeout": 0}, id="no-time"),
        pytest.param({"memory_bytes": 64 * 2**20}, id="too-little-memory"),
    ],
)
def test_limits_a_worker_cannot_run_under_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="WorkerLimits"):
        WorkerLimits(**limits)  # type: ignore[arg-type]


async def test_a_slow_call_does_not_hold_up_a_call_on_another_worker(tmp_path: Path) -> None:
    slow, fine = chart(tmp_path / "slow", SLOW), chart(tmp_path / "fine")
    async with HelmEngine(WorkerLimits(workers=2, timeout=60.0)) as engine:
        stuck = asyncio.create_task(render(engine, slow))
        await wait_for(lambda: engine.worker_pids(busy=True), message="a busy worker")
        assert await render(engine, fine)
        assert not stuck.done()
    with pytest.raises(WorkerCrashed):  # close() killed the busy worker under it
        await stuck


def test_without_the_helm_extra_every_call_says_how_to_install_it() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["helm_python"] = None
        from fluxbus_helmsdk import HelmEngine, HelmUnavailable, available

        async def main():
            assert not available()
            async with HelmEngine() as engine:
                for call in (engine.chart_info(b"x"), engine.oci_tags("oci://h/c")):
                    try:
                        await call
                    except HelmUnavailable as e:
                        print(e)
                    else:
                        raise SystemExit("no HelmUnavailable")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [UNAVAILABLE_MESSAGE] * 2


async def test_an_engine_that_is_closed_leaves_no_worker_behind(tmp_path: Path) -> None:
    data = chart(tmp_path)
    engine = HelmEngine(WorkerLimits(workers=2))
    async with engine:
        await asyncio.gather(render(engine, data), render(engine, data))
        pids = engine.worker_pids()
    assert pids and not any(alive(pid) for pid in pids)
    with pytest.raises(HelmEngineError, match="closed"):
        await render(engine, data)
