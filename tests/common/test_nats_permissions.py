"""The locked-down bus, against a real nats-server configured by
`fluxbus nats config`: each service's user does its own work without a single
permission violation, cannot write what belongs to another, cannot read
another user's replies; only the admin creates buckets; the dashboard never
reads Secrets; JetStream data is encrypted at rest; TLS carries the users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nkeys
import pytest

from fluxbus_cli.commands import nats as nats_cmd
from fluxbus_cli.natsconf import NatsFiles, write_config
from fluxbus_cli.render import Output
from fluxbus_common import natsauth, subjects
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event
from fluxbus_common.natsauth import Role, ServerTLS
from fluxbus_common.ports import BusError
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, wait_for
from fluxbus_git.testing.tls import TestCA

DENIED_TIMEOUT = 1.0
"""A denied request goes unanswered (the server only logs the violation): the
client gives up after its request timeout, kept short here."""


@dataclass
class Locked:
    server: NatsServer
    files: NatsFiles
    log: Path

    def settings(self, role: Role, **kw: object) -> BusSettings:
        return BusSettings(
            url=self.server.url,
            credentials=str(self.files.creds[role]),
            request_timeout=DENIED_TIMEOUT,
            **kw,  # type: ignore[arg-type]
        )

    def violations(self) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if "Violation" in line]


def start_locked(tmp_path: Path, *, encrypt: bool = True, tls: ServerTLS | None = None) -> Locked:
    server = NatsServer(tmp_path / "nats")
    files = write_config(
        tmp_path / "auth",
        store_dir=str(server.data_dir),
        port=server.port,
        tls=tls,
        encrypt=encrypt,
    )
    log = tmp_path / "nats.log"
    with files.config.open("a") as f:
        f.write(f'log_file: "{log}"\n')
    server.extra_args = ["-c", str(files.config)]
    server.start()
    return Locked(server, files, log)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Locked]:
    lk = start_locked(tmp_path)
    try:
        yield lk
    finally:
        lk.server.stop()


@pytest.fixture
async def admin(locked: Locked) -> AsyncIterator[Bus]:
    bus = await Bus.connect(locked.settings(Role.ADMIN), "admin", create=True)
    await bus.apply_object("gitrepository.apps.repo", {"kind": "GitRepository", "spec": {}})
    await bus.apply_object("kustomization.apps.app", {"kind": "Kustomization", "spec": {}})
    await bus.put_status("kustomization.apps.app", {"observedGeneration": 1}, 0)
    await bus.put_status("gitrepository.apps.repo", {"observedGeneration": 1}, 0)
    await bus.put_secret("apps", "git", {"kind": "Secret", "data": {"password": "aHVudGVyMg=="}})
    try:
        yield bus
    finally:
        await bus.close()


def public_key(seed_file: Path) -> str:
    return str(nkeys.from_seed(bytearray(seed_file.read_bytes().strip())).public_key.decode())


def event(kind: str) -> Event:
    return Event(
        involved_object={"kind": kind, "namespace": "apps", "name": "x"},
        severity="info",
        message="m",
        reason="Succeeded",
        reporting_controller="test",
    )


async def with_user(locked: Locked, role: Role, work: Callable[[Bus], Awaitable[object]]) -> None:
    bus = await Bus.connect(locked.settings(role), role.value)
    try:
        await work(bus)
    finally:
        await bus.close()


async def source_work(bus: Bus, tmp: Path) -> None:
    assert await bus.get_secret("apps", "git") is not None
    assert [e.key for e in await bus.list_objects("GitRepository")] == ["gitrepository.apps.repo"]
    status = await bus.get_status("gitrepository.apps.repo")
    assert status is not None
    await bus.put_status("gitrepository.apps.repo", {"ready": True}, status.revision)
    (tmp / "a.tar.gz").write_bytes(b"artifact" * 4096)
    name = subjects.artifact_name("GitRepository", "apps", "repo", "ab" * 32)
    await bus.put_artifact(name, tmp / "a.tar.gz")
    await bus.put_artifact(name, tmp / "a.tar.gz")  # replacing purges the old chunks
    await bus.get_artifact(name, tmp / "copy.tar.gz")
    assert await bus.list_artifacts("gitrepository/") == [name]
    await bus.delete_artifact(name)
    assert await bus.acquire_lease(subjects.lease_key("source", "gitrepository", 0), "s-0", 5)
    await bus.heartbeat(subjects.members_key("source", "gitrepository"), "s-0", 5)
    await bus.publish_event(event("GitRepository"))
    assert await bus.acquire_lease(subjects.lease_key("source", "helmchart", 0), "s-0", 5)
    await bus.publish_event(event("HelmRepository"))
    await bus.publish_event(event("HelmChart"))


async def kustomize_work(bus: Bus, tmp: Path) -> None:
    await bus.apply_object("gitrepository.apps.boot", {"kind": "GitRepository", "spec": {}})
    await bus.request_delete("gitrepository.apps.boot")
    status = await bus.get_status("kustomization.apps.app")
    assert status is not None
    await bus.put_status("kustomization.apps.app", {"ready": True}, status.revision)
    assert await bus.get_secret("apps", "git") is not None
    assert await bus.get_configmap("apps", "vars") is None
    async for change in bus.watch_status("GitRepository"):
        assert change.key == "gitrepository.apps.repo"
        break
    assert await bus.acquire_lease(subjects.lease_key("kustomize", "kustomization", 0), "k", 5)
    await bus.publish_event(event("Kustomization"))


async def image_work(bus: Bus, tmp: Path) -> None:
    await bus.put_blob(subjects.image_tags_name("apps", "podinfo"), b'["1.0.0"]')
    assert await bus.get_blob(subjects.image_tags_name("apps", "podinfo")) == b'["1.0.0"]'
    await bus.put_status("imagepolicy.apps.podinfo", {"latestRef": {"tag": "1.0.0"}}, 0)
    assert await bus.get_secret("apps", "git") is not None
    assert await bus.acquire_lease(subjects.lease_key("image-reflector", "imagepolicy", 0), "i", 5)
    await bus.publish_event(event("ImagePolicy"))


async def notifier_work(bus: Bus, tmp: Path) -> None:
    await bus.ensure_bucket(subjects.NOTIFIER_BUCKET)
    await bus.ensure_bucket(subjects.NOTIFIER_DEDUP_BUCKET, ttl=60)
    await bus.ensure_bucket(subjects.NOTIFIER_DEDUP_BUCKET, ttl=30)  # a shorter window
    await bus.ensure_bucket(subjects.NOTIFIER_DEDUP_BUCKET, ttl=90)  # a longer one
    await bus.kv_put(subjects.NOTIFIER_DEDUP_BUCKET, "dedup.x", {"eventId": "1"}, revision=0)
    await bus.ensure_event_consumer("notifier")
    await bus.emit_event(event("Alert"))
    async for delivery in bus.events(durable="notifier"):
        await delivery.ack()
        break
    # a Receiver annotates the object it names, whatever its kind (as in Flux)
    entry = await bus.get_object("kustomization.apps.app")
    assert entry is not None
    await bus.update_object("kustomization.apps.app", entry.value, entry.revision)
    await bus.put_status("receiver.apps.github", {"ready": True}, 0)
    assert await bus.get_secret("apps", "git") is not None
    assert await bus.acquire_lease(subjects.lease_key("notifier", "alert", 0), "n", 5)


async def helm_work(bus: Bus, tmp: Path) -> None:
    # the HelmChart generated for a HelmRelease's spec.chart, created and deleted with it
    chart = {"kind": "HelmChart", "spec": {"chart": "podinfo"}}
    await bus.apply_object("helmchart.apps.apps-podinfo", chart)
    await bus.request_delete("helmchart.apps.apps-podinfo")
    await bus.apply_object("helmrelease.apps.podinfo", {"kind": "HelmRelease", "spec": {}})
    await bus.put_status("helmrelease.apps.podinfo", {"ready": True}, 0)
    assert await bus.get_secret("apps", "git") is not None
    assert await bus.get_configmap("apps", "values") is None
    assert await bus.list_artifacts("helmchart/") == []
    async for change in bus.watch_status("GitRepository"):
        assert change.key == "gitrepository.apps.repo"
        break
    assert await bus.acquire_lease(subjects.lease_key("helm", "helmrelease", 0), "h", 5)
    await bus.heartbeat(subjects.members_key("helm", "helmrelease"), "h-0", 5)
    await bus.publish_event(event("HelmRelease"))


async def cli_work(bus: Bus, tmp: Path) -> None:
    await bus.apply_object("gitrepository.apps.other", {"kind": "GitRepository", "spec": {}})
    await bus.put_secret("apps", "token", {"kind": "Secret", "data": {}})
    assert {e.key for e in await bus.list_status()} >= {"kustomization.apps.app"}
    await bus.recent_events()


async def dashboard_work(bus: Bus, tmp: Path) -> None:
    assert len(await bus.list_objects()) == 2
    assert len(await bus.list_status()) == 2
    await bus.recent_events()


@pytest.mark.parametrize(
    ("role", "work"),
    [
        pytest.param(Role.SOURCE, source_work, id="source"),
        pytest.param(Role.KUSTOMIZE, kustomize_work, id="kustomize"),
        pytest.param(Role.IMAGE_REFLECTOR, image_work, id="image-reflector"),
        pytest.param(Role.NOTIFIER, notifier_work, id="notifier"),
        pytest.param(Role.HELM, helm_work, id="helm"),
        pytest.param(Role.CLI, cli_work, id="cli"),
        pytest.param(Role.DASHBOARD, dashboard_work, id="dashboard"),
    ],
)
async def test_each_user_does_its_own_work_without_a_permission_violation(
    locked: Locked, admin: Bus, tmp_path: Path, role: Role, work
):
    await with_user(locked, role, lambda bus: work(bus, tmp_path))
    assert locked.violations() == []


def put_artifact(bus: Bus, tmp: Path) -> Awaitable[object]:
    (tmp / "evil.tar.gz").write_bytes(b"evil")
    name = subjects.artifact_name("GitRepository", "apps", "repo", "cd" * 32)
    return bus.put_artifact(name, tmp / "evil.tar.gz")


@pytest.mark.parametrize(
    ("role", "attempt"),
    [
        pytest.param(
            Role.NOTIFIER, lambda b, t: put_artifact(b, t), id="notifier-puts-an-artifact"
        ),
        # (the kustomize user may put into the object store: rollback keeps rendered outputs there)
        pytest.param(
            Role.KUSTOMIZE,
            lambda b, t: b.acquire_lease(subjects.lease_key("source", "gitrepository", 0), "x", 5),
            id="kustomize-takes-the-source-lease",
        ),
        pytest.param(
            Role.NOTIFIER,
            lambda b, t: b.put_status("kustomization.apps.app", {"ready": False}, 1),
            id="notifier-writes-kustomization-status",
        ),
        pytest.param(
            Role.SOURCE,
            lambda b, t: b.put_status("kustomization.apps.app", {"ready": False}, 1),
            id="source-writes-kustomization-status",
        ),
        pytest.param(
            Role.IMAGE_REFLECTOR,
            lambda b, t: b.put_status("gitrepository.apps.repo", {"ready": False}, 2),
            id="image-reflector-writes-gitrepository-status",
        ),
        pytest.param(
            Role.KUSTOMIZE,
            lambda b, t: b.put_status("gitrepository.apps.repo", {"ready": False}, 2),
            id="kustomize-writes-gitrepository-status",
        ),
        pytest.param(
            Role.SOURCE,
            lambda b, t: b.apply_object("kustomization.apps.app", {"kind": "Kustomization"}),
            id="source-writes-a-kustomization",
        ),
        pytest.param(
            Role.IMAGE_REFLECTOR,
            lambda b, t: b.remove_object("kustomization.apps.app"),
            id="image-reflector-deletes-a-kustomization",
        ),
        pytest.param(
            Role.NOTIFIER,
            lambda b, t: b.put_secret("apps", "git", {"kind": "Secret", "data": {}}),
            id="notifier-overwrites-a-secret",
        ),
        pytest.param(
            Role.SOURCE,
            lambda b, t: b.acquire_lease(
                subjects.lease_key("kustomize", "kustomization", 0), "x", 5
            ),
            id="source-takes-the-kustomize-lease",
        ),
        pytest.param(
            Role.SOURCE,
            lambda b, t: b.publish_event(event("Kustomization")),
            id="source-speaks-for-a-kustomization",
        ),
        pytest.param(Role.HELM, lambda b, t: put_artifact(b, t), id="helm-puts-an-artifact"),
        pytest.param(
            Role.HELM,
            lambda b, t: b.apply_object("kustomization.apps.app", {"kind": "Kustomization"}),
            id="helm-writes-a-kustomization",
        ),
        pytest.param(
            Role.HELM,
            lambda b, t: b.put_status("gitrepository.apps.repo", {"ready": False}, 2),
            id="helm-writes-gitrepository-status",
        ),
        pytest.param(
            Role.HELM,
            lambda b, t: b.acquire_lease(
                subjects.lease_key("kustomize", "kustomization", 0), "x", 5
            ),
            id="helm-takes-the-kustomize-lease",
        ),
        pytest.param(
            Role.DASHBOARD,
            lambda b, t: b.apply_object("gitrepository.apps.repo", {"kind": "GitRepository"}),
            id="dashboard-writes-an-object",
        ),
        pytest.param(
            Role.DASHBOARD, lambda b, t: b.get_secret("apps", "git"), id="dashboard-reads-a-secret"
        ),
        pytest.param(Role.DASHBOARD, lambda b, t: b.list_secrets(), id="dashboard-lists-secrets"),
    ],
)
async def test_a_user_cannot_touch_what_belongs_to_another(
    locked: Locked, admin: Bus, tmp_path: Path, role: Role, attempt
):
    before = {
        "objects": await admin.list_objects(),
        "status": await admin.list_status(),
        "secrets": await admin.list_secrets(),
        "artifacts": await admin.list_artifacts(),
        "leases": await admin.lease_holders([subjects.lease_key("kustomize", "kustomization", 0)]),
    }

    async def try_it(bus: Bus) -> None:
        with pytest.raises(BusError):
            await attempt(bus, tmp_path)

    await with_user(locked, role, try_it)
    assert locked.violations(), "the server reports the attempt"
    after = {
        "objects": await admin.list_objects(),
        "status": await admin.list_status(),
        "secrets": await admin.list_secrets(),
        "artifacts": await admin.list_artifacts(),
        "leases": await admin.lease_holders([subjects.lease_key("kustomize", "kustomization", 0)]),
    }
    assert after == before


async def test_a_user_cannot_listen_to_the_replies_of_another(locked: Locked, admin: Bus):
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e))

    seed = locked.files.creds[Role.DASHBOARD].read_text().strip()
    nc = await nats.connect(locked.server.url, nkeys_seed_str=seed, error_cb=on_error)
    try:
        source = natsauth.inbox_prefix(public_key(locked.files.creds[Role.SOURCE]))
        for subject in ("_INBOX.>", f"{source}.>", ">", f"$KV.{subjects.SECRETS_BUCKET}.>"):
            await nc.subscribe(subject)
        await wait_for(lambda: len(errors) >= 4, message="four refused subscriptions")
    finally:
        await nc.close()
    assert all("permissions violation for subscription" in e for e in errors)


async def test_only_the_admin_creates_the_buckets(locked: Locked):
    with pytest.raises(BusError, match="fluxbus nats init"):
        await Bus.connect(locked.settings(Role.SOURCE), "source")
    with pytest.raises(BusError):
        await Bus.connect(locked.settings(Role.SOURCE), "source", create=True)
    assert await nats_cmd.init(Output(), locked.settings(Role.ADMIN)) == 0
    await with_user(locked, Role.SOURCE, lambda bus: bus.list_objects())


@pytest.mark.parametrize(
    ("encrypt", "readable"),
    [
        pytest.param(True, False, id="encrypted-at-rest"),
        pytest.param(False, True, id="plain-without-a-cipher"),
    ],
)
async def test_secrets_on_the_servers_disk_are_encrypted(
    tmp_path: Path, encrypt: bool, readable: bool
):
    lk = start_locked(tmp_path, encrypt=encrypt)
    try:
        bus = await Bus.connect(lk.settings(Role.ADMIN), "admin", create=True)
        await bus.put_secret("apps", "git", {"kind": "Secret", "data": {"pw": "plaintext-4711"}})
        await bus.close()
    finally:
        lk.server.stop()  # flushes every block to disk
    found = [
        p
        for p in lk.server.data_dir.rglob("*")
        if p.is_file() and b"plaintext-4711" in p.read_bytes()
    ]
    assert bool(found) is readable
    if encrypt:  # and the server reads its encrypted data back after a restart
        lk.server.start()
        try:
            bus = await Bus.connect(lk.settings(Role.SOURCE), "source")
            assert await bus.get_secret("apps", "git") is not None
            await bus.close()
        finally:
            lk.server.stop()


async def test_users_reach_a_tls_server_and_plain_clients_are_refused(tmp_path: Path):
    ca = await asyncio.to_thread(TestCA.create, tmp_path / "pki")
    tls = ServerTLS(str(ca.path("server.crt")), str(ca.path("server.key")))
    lk = start_locked(tmp_path, tls=tls)
    try:
        url = f"tls://127.0.0.1:{lk.server.port}"
        settings = BusSettings(
            url=url,
            credentials=str(lk.files.creds[Role.ADMIN]),
            tls_ca=str(ca.path("ca.crt")),
            connect_timeout=2,
        )
        bus = await Bus.connect(settings, "admin", create=True)
        await bus.close()
        plain = BusSettings(
            url=f"nats://127.0.0.1:{lk.server.port}",
            credentials=str(lk.files.creds[Role.ADMIN]),
            connect_timeout=2,
        )
        with pytest.raises(BusError):
            await Bus.connect(plain, "admin", create=True)
    finally:
        lk.server.stop()
