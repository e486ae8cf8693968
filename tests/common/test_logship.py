"""Shipping log records to the logs stream: records reach NATS with their
service, instance and level, secrets redacted; a log call never waits for
NATS, the buffer stays bounded while NATS is down and drains when it is
back; the sender never ships what it logs itself."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.logconfig import _redact
from fluxbus_common.logship import LogShipper, encode_record, stamp
from fluxbus_common.redact import REDACTED, redact_text
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_common.testing.plugin import NatsServer, wait_for


def logger_for(shipper: LogShipper) -> Any:
    """A structlog logger whose chain is the one `logconfig.configure` builds."""
    return structlog.wrap_logger(
        structlog.PrintLogger(io.StringIO()),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            shipper,
            structlog.processors.JSONRenderer(),
        ],
    )


@contextlib.asynccontextmanager
async def sending(shipper: LogShipper, sink: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(shipper.run(sink, "source", "source-1"), name="test-log-sender")
    try:
        yield task
    finally:
        await cancel_and_wait(task)


async def stored(bus: Bus, subject: str = subjects.LOGS_SUBJECTS) -> list[dict[str, Any]]:
    return [record async for _, record in bus.read_logs(subject)]


async def test_records_reach_the_stream_with_service_instance_and_level_and_no_secret(bus: Bus):
    shipper = LogShipper()
    log = logger_for(shipper)
    async with sending(shipper, bus):
        log.info("fetch.started", url="https://user:s3cret@git.example.com/repo.git")
        log.error("auth.failed", password="hunter2", header="Authorization: Bearer abc.def.123")

        async def both() -> list[dict[str, Any]] | None:
            records = await stored(bus)
            return records if len(records) == 2 else None

        records = await wait_for(both, message="two records in the logs stream")

    first, second = records
    assert (first["service"], first["instance"], first["level"]) == ("source", "source-1", "info")
    assert first["url"] == "https://***@git.example.com/repo.git"
    assert second["level"] == "error"
    assert second["password"] == REDACTED
    assert second["header"] == f"Authorization: Bearer {REDACTED}"
    assert [r["event"] for r in await stored(bus, subjects.log_filter("source"))] == [
        "fetch.started",
        "auth.failed",
    ]
    assert "s3cret" not in json.dumps(records) and "hunter2" not in json.dumps(records)


async def test_logging_never_waits_for_nats_and_keeps_a_bounded_buffer_until_it_is_back(
    nats_server: NatsServer, bus: Bus
):
    shipper = LogShipper(limit=10)
    log = logger_for(shipper)
    async with sending(shipper, bus):
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="the bus notices the outage")
        for i in range(100):  # no await: a log call cannot wait for anything
            log.info("tick", n=i)
        assert (shipper.pending, shipper.dropped) == (10, 90)
        nats_server.start()

        async def drained() -> list[dict[str, Any]] | None:
            if shipper.pending:
                return None
            records = [r for r in await stored(bus) if r.get("event") == "tick"]
            return records if len(records) == 10 else None

        records = await wait_for(drained, timeout=20, message="the buffer published")
    assert [r["n"] for r in records] == list(range(90, 100))


class LoggingSink:
    """A bus whose publish logs through the shipping logger: shipping must not recurse."""

    def __init__(self, bus: Bus, log: Any) -> None:
        self.bus = bus
        self.log = log
        self.published = 0

    @property
    def connected(self) -> bool:
        return self.bus.connected

    async def publish_log(self, subject: str, data: bytes) -> None:
        self.published += 1
        self.log.info("log.published", subject=subject)
        await self.bus.publish_log(subject, data)


async def test_the_sender_never_ships_its_own_records(bus: Bus):
    shipper = LogShipper()
    log = logger_for(shipper)
    sink = LoggingSink(bus, log)
    async with sending(shipper, sink):
        log.info("one")
        log.info("two")

        async def published() -> list[dict[str, Any]] | None:
            records = await stored(bus)
            return records if len(records) == 2 and shipper.pending == 0 else None

        records = await wait_for(published, message="the two records")
    assert [r["event"] for r in records] == ["one", "two"]
    assert sink.published == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "clone https://bot:ghp_x1@github.com/o/r failed",
            "clone https://***@github.com/o/r failed",
            id="url-credentials",
        ),
        pytest.param(
            "Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}", id="basic"
        ),
        pytest.param("Basic authentication failed", "Basic authentication failed", id="prose-kept"),
        pytest.param("ssh://git@github.com/o/r", "ssh://***@github.com/o/r", id="ssh-user"),
        pytest.param("no secrets here", "no secrets here", id="plain"),
    ],
)
def test_text_is_redacted_before_it_is_logged(text: str, expected: str):
    assert redact_text(text) == expected


def test_a_huge_record_is_cut_to_its_first_fields_and_stamped_with_its_origin():
    data = encode_record({"event": "big", "level": "info", "blob": "x" * 100_000})
    record = json.loads(stamp(data, "kustomize", "k-0"))
    assert record == {
        "service": "kustomize",
        "instance": "k-0",
        "level": "info",
        "event": "big",
        "truncated": True,
    }
