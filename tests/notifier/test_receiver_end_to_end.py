"""A GitHub push webhook drives the whole GitOps chain at once: the Receiver
server annotates the GitRepository and the Kustomization, the REAL source
service (`fluxbus_source.app.run`) fetches the new commit from a real Git HTTP
server, and the REAL kustomize service (`fluxbus_kustomize.app.run`) applies it
to kubelite — with both intervals at one hour, only the webhook can do it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from receiver_helpers import NAMESPACE, TOKEN, key_of, receiver, receivers, secret

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_kustomize import app as kustomize_app
from fluxbus_notifier.logic.webhooks import hub_signature
from fluxbus_source import app as source_app

SERVICE_SETTINGS = RuntimeSettings(
    workers=2,
    shards=1,
    lease_ttl=5,
    instance="e2e",
    http_addr="",
    backoff_base=0.1,
    backoff_cap=1.0,
)


def configmap_yaml(value: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: default\n"
        f"data:\n  message: {value}\n"
    )


def objects(url: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "fleet", "namespace": NAMESPACE},
            "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": NAMESPACE},
            "spec": {
                "interval": "1h",
                "path": "./",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            },
        },
    ]


@contextlib.asynccontextmanager
async def services(bus_settings: BusSettings, kubeconfig: str, work: Path) -> AsyncIterator[None]:
    """Run the source and kustomize services (their composition roots) until the block ends."""
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            source_app.run(bus_settings, SERVICE_SETTINGS, stop=stop, work_dir=work),
            name="e2e-source",
        ),
        asyncio.create_task(
            kustomize_app.run(
                bus_settings=bus_settings,
                runtime_settings=SERVICE_SETTINGS,
                kubeconfig=kubeconfig,
                stop=stop,
            ),
            name="e2e-kustomize",
        ),
    ]
    try:
        yield
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=20)
        assert not pending, "services did not stop"
        for task in done:
            task.result()


async def test_a_github_push_webhook_fetches_and_applies_the_new_commit_at_once(
    bus: Bus,
    bus_settings: BusSettings,
    kubelite: Any,
    git_repo: GitRepo,
    git_http_server: GitHTTPServer,
    tmp_path: Path,
):
    git_repo.commit({"greeting.yaml": configmap_yaml("hello")}, branch="main", message="first")
    await bus.put_secret(NAMESPACE, "webhook-token", secret(token=TOKEN))
    for doc in objects(git_http_server.url(git_repo)):
        await bus.apply_object(key_of(doc["kind"], doc["metadata"]["name"]), doc)
    hook = receiver(
        "github",
        "github",
        events=["push"],
        resources=[
            {"kind": "GitRepository", "name": "fleet"},
            {"kind": "Kustomization", "name": "apps"},
        ],
    )
    await bus.apply_object(key_of("Receiver", "github"), hook)

    def greeting() -> str | None:
        got = kubelite.kubectl("get", "configmap", "greeting", "-n", "default", "-o", "json")
        return json.loads(got.stdout)["data"]["message"] if got.returncode == 0 else None

    async with services(bus_settings, kubelite.kubeconfig, tmp_path / "work"), receivers(bus) as rx:
        await wait_for(lambda: greeting() == "hello", timeout=30, message="first commit applied")
        url = rx.url + await rx.path_of(bus, "github")

        sha = git_repo.commit(
            {"greeting.yaml": configmap_yaml("pushed")}, branch="main", message="second"
        )
        body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": hub_signature(TOKEN, body),
        }
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
            assert r.status == 200, await r.text()

        await wait_for(lambda: greeting() == "pushed", timeout=30, message="push applied")
        source = (await bus.get_status(key_of("GitRepository", "fleet"))).value
        assert source["artifact"]["revision"] == f"main@sha1:{sha}"
        annotations = (await bus.get_object(key_of("GitRepository", "fleet"))).value["metadata"][
            "annotations"
        ]
        assert source["lastHandledReconcileAt"] == annotations["reconcile.fluxcd.io/requestedAt"]
