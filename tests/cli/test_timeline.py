"""`fluxbus timeline` against a real nats-server: events on the events stream,
status revisions in the status bucket and the notifier's log records become a
text timeline with a table of the events, or a PNG/SVG picture."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import Cli

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.testing.plugin import wait_for

NS = "flux-system"
REV_A = "main@sha1:" + "a" * 40
REV_B = "main@sha1:" + "b" * 40
REVISION_KEY = "kustomize.toolkit.fluxcd.io/revision"


def ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(
    kind: str,
    name: str,
    seconds_ago: int,
    reason: str,
    message: str,
    *,
    error: bool = False,
    metadata: dict[str, str] | None = None,
) -> Event:
    return Event(
        involved_object=ObjectReference(kind=kind, namespace=NS, name=name),
        severity=Severity.ERROR if error else Severity.INFO,
        timestamp=ago(seconds_ago),
        reason=reason,
        message=message,
        metadata=metadata or {},
        reporting_controller="test",
    )


def ready(status: str, reason: str) -> dict[str, object]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}


@pytest.fixture
async def story(bus: Bus) -> Bus:
    """Ten minutes of a Kustomization's life: applied, drifted, a new revision with a
    prune, an image bump, a failure that was notified; then its status revisions."""
    await bus.apply_object(
        subjects.object_key("Kustomization", NS, "apps"),
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"namespace": NS, "name": "apps"},
            "spec": {"interval": "1m", "sourceRef": {"kind": "GitRepository", "name": "podinfo"}},
        },
    )
    for e in [
        event(
            "GitRepository", "podinfo", 600, "NewArtifact", "stored", metadata={"revision": REV_A}
        ),
        event(
            "Kustomization",
            "apps",
            590,
            "ReconciliationSucceeded",
            "Deployment/apps/podinfo created",
            metadata={REVISION_KEY: REV_A},
        ),
        event(
            "Kustomization",
            "apps",
            450,
            "ReconciliationSucceeded",
            "Deployment/apps/podinfo configured",
            metadata={REVISION_KEY: REV_A},
        ),
        event(
            "GitRepository", "podinfo", 240, "NewArtifact", "stored", metadata={"revision": REV_B}
        ),
        event(
            "Kustomization",
            "apps",
            230,
            "ReconciliationSucceeded",
            "Deployment/apps/podinfo configured\nService/apps/orphan deleted",
            metadata={REVISION_KEY: REV_B},
        ),
        event(
            "ImagePolicy",
            "podinfo",
            200,
            "Succeeded",
            "Latest image tag for 'reg/podinfo' resolved to 1.4.1 (previously reg/podinfo:1.4.0)",
        ),
        event("Kustomization", "apps", 120, "BuildFailed", "kustomize build failed", error=True),
    ]:
        await bus.publish_event(e)
    record = {
        "service": "notifier",
        "instance": "notifier-0",
        "timestamp": ago(119),
        "level": "info",
        "event": "notify.sent",
        "kind": "Kustomization",
        "namespace": NS,
        "name": "apps",
        "alert": "on-call",
        "provider": "slack",
    }
    await bus.publish_log(subjects.log_subject("notifier", "info"), json.dumps(record).encode())
    await wait_for(lambda: _stored(bus), message="the log record stored")
    key = subjects.object_key("Kustomization", NS, "apps")
    rev = await bus.put_status(key, ready("Unknown", "Progressing"), 0)
    await bus.put_status(key, ready("True", "ReconciliationSucceeded"), rev)
    return bus


async def _stored(bus: Bus) -> bool:
    return await bus.log_records() >= 1


def lane(stdout: str, name: str) -> tuple[str, str]:
    """The state row of a lane and the marks row under it."""
    lines = stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(name + " "))
    return lines[i].split("|")[1], lines[i + 1].strip()


def table(stdout: str) -> list[list[str]]:
    """(OBJECT, WHAT) of each row of the table of events."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("TIME "))
    rows = []
    for line in lines[head + 1 :]:
        _, obj, rest = line.split(maxsplit=2)
        what = next(w for w in WHATS if rest.startswith(w))
        rows.append([obj, what])
    return rows


WHATS = (
    "drift detected",
    "new revision",
    "pruned",
    "image bumped",
    "notification sent",
    "webhook received",
    "failed",
    "event",
)


async def test_the_text_timeline_draws_states_and_marks_and_lists_the_events(cli: Cli, story: Bus):
    result = await cli("timeline")
    assert result.code == 0, result.output
    states, marks = lane(result.stdout, "Kustomization/flux-system/apps")
    assert states.startswith("!")  # its source had a revision it had not applied yet
    assert {"=", "!", "X"} <= set(states)
    assert states.rstrip().endswith("=")  # the latest status: Ready
    assert set("RDPFN") <= set(marks)
    assert table(result.stdout) == [
        ["GitRepository/flux-system/podinfo", "new revision"],
        ["Kustomization/flux-system/apps", "new revision"],
        ["Kustomization/flux-system/apps", "drift detected"],
        ["GitRepository/flux-system/podinfo", "new revision"],
        ["Kustomization/flux-system/apps", "new revision"],
        ["Kustomization/flux-system/apps", "pruned"],
        ["ImagePolicy/flux-system/podinfo", "image bumped"],
        ["Kustomization/flux-system/apps", "failed"],
        ["Kustomization/flux-system/apps", "notification sent"],
    ]
    assert "drift corrected: Deployment/apps/podinfo configured" in result.stdout


async def test_for_and_since_narrow_the_timeline(cli: Cli, story: Bus):
    result = await cli("timeline", "--for", "ks/apps", "--since", "5m")
    assert result.code == 0, result.output
    assert [row[1] for row in table(result.stdout)] == [
        "new revision",
        "pruned",
        "failed",
        "notification sent",
    ]
    assert {row[0] for row in table(result.stdout)} == {"Kustomization/flux-system/apps"}
    other = await cli("timeline", "-n", "elsewhere")
    assert other.code == 0
    assert "nothing to draw" in other.stderr


@pytest.mark.parametrize(
    ("name", "head"),
    [
        pytest.param("timeline.png", b"\x89PNG\r\n\x1a\n", id="png"),
        pytest.param("timeline.svg", b"<?xml", id="svg"),
    ],
)
async def test_a_picture_is_written_as_png_or_svg(
    fluxbus: Cli, story: Bus, tmp_path: Path, name: str, head: bytes
):
    path = tmp_path / name
    result = await fluxbus("timeline", "-o", str(path))
    assert result.code == 0, result.output
    data = path.read_bytes()
    assert data.startswith(head)
    assert len(data) > 10_000
    assert str(path) in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("-o", "timeline.pdf"), "-o must name a .png or .svg file", id="format"),
        pytest.param(("--since", "ten minutes"), "--since:", id="since"),
        pytest.param(("--for", "apps"), "expected KIND/NAME", id="for"),
    ],
)
async def test_bad_options_are_refused_before_anything_is_read(cli: Cli, args, message):
    result = await cli("timeline", *args)
    assert result.code == 1
    assert message in result.stderr
