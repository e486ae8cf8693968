"""Helpers of the image service tests: the whole image-reflector service run
in-process against the test's nats-server, object documents, and status accessors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_common.testing.plugin import wait_for
from fluxbus_image import app
from fluxbus_image.settings import ImageSettings

NS = "flux-system"


def runtime_settings(instance: str = "test") -> RuntimeSettings:
    return RuntimeSettings(
        workers=2,
        shards=1,
        lease_ttl=5,
        instance=instance,
        http_addr="",
        backoff_base=0.1,
        backoff_cap=1.0,
    )


@contextlib.asynccontextmanager
async def image_service(
    bus_settings: BusSettings, tmp_path: Path, instance: str = "test"
) -> AsyncIterator[None]:
    """Run the image-reflector service (all three kinds) until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        app.run(
            bus_settings,
            runtime_settings(instance),
            stop=stop,
            settings=ImageSettings(work_dir=tmp_path, dependency_requeue=0.5),
        ),
        name=f"image-service-{instance}",
    )
    try:
        yield
    finally:
        stop.set()
        try:
            async with asyncio.timeout(20):
                await asyncio.shield(task)
        except TimeoutError:
            await cancel_and_wait(task)


def image_repository(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"image": image, "interval": "1h", **spec},
    }


def image_policy(name: str, repository: str, policy: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"imageRepositoryRef": {"name": repository}, "policy": policy, **spec},
    }


def git_repository(name: str, url: str, branch: str = "main", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"interval": "1h", "url": url, "ref": {"branch": branch}, **spec},
    }


def automation(name: str, source: str, **git: Any) -> dict[str, Any]:
    spec_git: dict[str, Any] = {
        "commit": {"author": {"name": "fluxbot", "email": "fluxbot@example.com"}},
        **git,
    }
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": source},
            "git": spec_git,
            "update": {"strategy": "Setters", "path": "./"},
        },
    }


def docker_config_secret(name: str, registry: str, username: str, password: str) -> dict[str, Any]:
    import base64
    import json

    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config},
    }


def basic_auth_secret(name: str, username: str, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": {"username": username, "password": password},
    }


async def apply(bus: Bus, *docs: dict[str, Any]) -> None:
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Secret":
            await bus.put_secret(meta["namespace"], meta["name"], doc)
        else:
            await bus.apply_object(
                subjects.object_key(doc["kind"], meta["namespace"], meta["name"]), doc
            )


async def status(bus: Bus, kind: str, name: str) -> dict[str, Any]:
    entry = await bus.get_status(subjects.object_key(kind, NS, name))
    return {} if entry is None else entry.value


def ready_of(st: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions", []) if c["type"] == "Ready"), None)


async def wait_ready(
    bus: Bus, kind: str, name: str, check: Any = None, timeout: float = 20.0
) -> dict[str, Any]:
    """Wait until the object is Ready (and `check(status)` holds); return its status."""

    async def ready() -> dict[str, Any] | None:
        st = await status(bus, kind, name)
        cond = ready_of(st)
        if cond is None or cond["status"] != "True":
            return None
        return st if check is None or check(st) else None

    return await wait_for(ready, timeout=timeout, message=f"{kind} {name} ready")


async def wait_condition(
    bus: Bus,
    kind: str,
    name: str,
    status_value: str,
    reason: str | None = None,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Wait until Ready has `status_value` (and `reason`); return the status."""

    async def matches() -> dict[str, Any] | None:
        st = await status(bus, kind, name)
        cond = ready_of(st)
        if cond is None or cond["status"] != status_value:
            return None
        if reason is not None and cond["reason"] != reason:
            return None
        return st

    return await wait_for(matches, timeout=timeout, message=f"{kind} {name} Ready={status_value}")


async def request_reconcile(bus: Bus, kind: str, name: str, token: str) -> None:
    key = subjects.object_key(kind, NS, name)
    entry = await bus.get_object(key)
    assert entry is not None
    entry.value.setdefault("metadata", {}).setdefault("annotations", {})[
        "reconcile.fluxcd.io/requestedAt"
    ] = token
    await bus.update_object(key, entry.value, entry.revision)
