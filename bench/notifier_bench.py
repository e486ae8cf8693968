"""Benchmark of the notifier service (issue 10), every service a real process.

Scenarios:
  1. event published (`EventRecorder.record`, what every service calls) ->
     webhook received by a local `generic` endpoint, one event at a time,
     p50 / p99 over `--events` events                          (goal p50 <= 20 ms)
  2. sustained delivery to three Providers at once (generic, generic-hmac and
     slack stand-ins, one Alert each) while events are published as fast as
     this process can for `--seconds`: events/s delivered to all three, and the
     backlog when publishing stops (and how long it takes to drain)
  3. git push -> objects applied in the cluster through a GitHub-style Receiver
     webhook (signed `X-Hub-Signature-256` push event), with the real source,
     kustomize and notifier services and kubelite, p50 / p99 over `--pushes`
     pushes                                                    (goal p50 <= 1 s, p99 <= 3 s)

`nats-server`, `fluxbus-notifier`, `fluxbus-source`, `fluxbus-kustomize` and
`fluxbus-kubelite` each run as their own process, as in a cluster; this
process publishes events, serves the stand-in endpoints (aiohttp,
`fluxbus_notifier.testing.endpoints`) and the Git server (`git http-backend`),
pushes with the real `git`, and watches the cluster through its API.

    .venv/bin/python bench/notifier_bench.py [--events 500] [--seconds 10] [--objects 100]
        [--rate 200] [--pushes 100]
        [--only 1,2,3] [--profile DIR] [--out bench/results/notifier.md]

`--profile DIR` runs the notifier (and, in scenario 3, source and kustomize)
under cProfile and writes DIR/<service>-<scenario>.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from kustomize_bench import cpu_seconds, start_kubelite
from notifier_report import report

from fluxbus_common import subjects
from fluxbus_common.api.kustomize import Kustomization
from fluxbus_common.bus import Bus
from fluxbus_common.events import Severity
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, free_port
from fluxbus_git.testing import GitHTTPServer, make_repo
from fluxbus_kubelite.access import Access
from fluxbus_notifier.logic.webhooks import hub_signature
from fluxbus_notifier.testing.endpoints import Endpoint

NS = "flux-system"
EVENT_ID = "X-Fluxbus-Event-Id"
HMAC_KEY = "bench-hmac-key-0123456789"
RECEIVER_TOKEN = "bench-receiver-token-0123456789"
BIN = Path(sys.executable).parent


# -- processes ---------------------------------------------------------------


class Services:
    """Service processes started with the bench's environment, stopped with SIGTERM."""

    def __init__(
        self, nats_url: str, profile_dir: Path | None, scenario: str, log_dir: Path
    ) -> None:
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "FLUXBUS_NATS_URL": nats_url,
            "FLUXBUS_HTTP_ADDR": "",
            "FLUXBUS_LOG_LEVEL": "warning",
        }
        self.profile_dir = profile_dir
        self.scenario = scenario
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, module: str, **env: str) -> None:
        """Start `fluxbus-<name>`; its JSON log lines (warning and above) go to a file."""
        command = [str(BIN / f"fluxbus-{name}")]
        if self.profile_dir is not None:
            out = self.profile_dir / f"{name}-{self.scenario}.prof"
            command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", module]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.logs[name] = self.log_dir / f"{name}.log"
        with self.logs[name].open("wb") as log:
            proc = subprocess.Popen(command, env={**self.env, **env}, stdout=log, stderr=log)
        self.procs[name] = proc

    def problems(self) -> list[str]:
        """`<service>: <event>` of every warning or error the services logged."""
        out = []
        for name, path in self.logs.items():
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    if isinstance(doc, dict) and doc.get("level") in ("warning", "error"):
                        out.append(f"{name}: {doc.get('event')}")
                        continue
                if line.strip() and not line.startswith("{"):
                    out.append(f"{name}: {line.strip()[:120]}")
        return out

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each service process."""
        return {name: cpu_seconds(p.pid)[0] for name, p in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop on SIGTERM; killed", file=sys.stderr)
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def nats_and_bus(tmp: Path) -> AsyncIterator[tuple[NatsServer, Bus]]:
    nats = NatsServer(tmp / "nats")
    nats.start()
    bus = await Bus.connect(BusSettings(url=nats.url), "bench")
    try:
        yield nats, bus
    finally:
        await bus.close()
        nats.stop()


async def wait(predicate: Any, timeout: float, what: str) -> Any:
    """Poll `predicate` (sync or async) until truthy; only for set-up, never timed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: {what} not reached in {timeout:.0f} s")
        await asyncio.sleep(0.05)


# -- toolkit objects ---------------------------------------------------------


def provider(name: str, type_: str, address: str, secret: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "address": address}
    if secret:
        spec["secretRef"] = {"name": secret}
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def alert(name: str, provider_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "providerRef": {"name": provider_name},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
        },
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": data,
    }


async def start_notifier(bus: Bus, services: Services, receiver_addr: str = "127.0.0.1:0") -> None:
    """Create the durable consumer first (so nothing published from now on is
    missed while the process starts), then start the notifier."""
    await bus.ensure_event_consumer("notifier")
    services.start("notifier", "fluxbus_notifier", FLUXBUS_RECEIVER_ADDR=receiver_addr)


async def store(bus: Bus, *docs: dict[str, Any]) -> None:
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Secret":
            await bus.put_secret(meta["namespace"], meta["name"], doc)
        else:
            key = subjects.object_key(doc["kind"], meta["namespace"], meta["name"])
            await bus.apply_object(key, doc)


def kustomizations(n: int) -> list[Kustomization]:
    """The objects the published events are about (`apps-0` … `apps-<n-1>`)."""
    return [
        Kustomization.model_validate(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": f"apps-{i}", "namespace": NS, "uid": f"uid-{i}"},
                "spec": {
                    "interval": "10m",
                    "prune": False,
                    "path": "./",
                    "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                },
            }
        )
        for i in range(n)
    ]


def revision(i: int) -> str:
    """A distinct revision per event, so that no two events are identical (dedup)."""
    return f"main@sha1:{hashlib.sha1(str(i).encode()).hexdigest()}"


async def emit(recorder: EventRecorder, obj: Kustomization, i: int) -> str:
    return await recorder.record(
        obj,
        Severity.INFO,
        "ReconciliationSucceeded",
        f"Applied revision: {revision(i)}",
        {"revision": revision(i)},
    )


async def warm_up(recorder: EventRecorder, obj: Kustomization, hooks: list[Endpoint]) -> int:
    """Publish until every endpoint got a request (the notifier is consuming and
    its HTTP connections are open); return how many events it took."""
    sent = 0
    deadline = time.monotonic() + 60
    while not all(h.requests for h in hooks):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark: the notifier never delivered")
        await emit(recorder, obj, -1 - sent)
        sent += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                for h in hooks:
                    await h.wait_count(1)
    for h in hooks:  # let the warm-up's stragglers arrive, then forget them
        await h.wait_count(sent)
        h.requests.clear()
    return sent


# -- scenario 1: latency -----------------------------------------------------


async def latency(tmp: Path, events: int, profile: Path | None) -> dict[str, Any]:
    async with nats_and_bus(tmp / "s1") as (nats, bus), Endpoint() as hook:
        await store(bus, provider("hook", "generic", hook.url_for("/hook")), alert("all", "hook"))
        services = Services(nats.url, profile, "latency", tmp / "s1" / "logs")
        await start_notifier(bus, services)
        try:
            recorder = EventRecorder(bus, "kustomize-controller", "bench")
            [obj] = kustomizations(1)
            await warm_up(recorder, obj, [hook])
            cpu0 = services.cpu()["notifier"]
            total: list[float] = []
            publish: list[float] = []
            for i in range(events):
                t0 = time.perf_counter()
                event_id = await emit(recorder, obj, i)
                publish.append(time.perf_counter() - t0)
                async with asyncio.timeout(30):
                    await hook.wait_count(i + 1)
                got = hook.requests[i]
                assert got.headers[EVENT_ID] == event_id, "events arrived out of order"
                total.append(got.at - t0)
            cpu = services.cpu()["notifier"] - cpu0
        finally:
            services.stop()
    return {
        "total": total,
        "publish": publish,
        "cpu_per_event": cpu / events,
        "problems": services.problems(),
    }


# -- scenario 2: throughput --------------------------------------------------


def hmac_ok(body: bytes, header: str) -> bool:
    want = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, header)


async def throughput(
    tmp: Path, seconds: float, objects: int, rate: float | None, profile: Path | None
) -> dict[str, Any]:
    """Publish for `seconds`, as fast as possible (`rate` None) or paced at `rate`/s."""
    label = f"{objects}-{'flood' if rate is None else int(rate)}"
    async with (
        nats_and_bus(tmp / f"s2-{label}") as (nats, bus),
        Endpoint() as generic,
        Endpoint() as signed,
        Endpoint() as slack,
    ):
        hooks = {"generic": generic, "generic-hmac": signed, "slack": slack}
        await store(
            bus,
            secret("hmac-key", token=HMAC_KEY),
            provider("generic", "generic", generic.url_for("/hook")),
            provider("generic-hmac", "generic-hmac", signed.url_for("/hook"), "hmac-key"),
            provider("slack", "slack", slack.url_for("/services/T000/B000/XXXX")),
            *(alert(f"to-{name}", name) for name in hooks),
        )
        services = Services(nats.url, profile, f"throughput-{label}", tmp / f"s2-{label}" / "logs")
        await start_notifier(bus, services)
        try:
            recorder = EventRecorder(bus, "kustomize-controller", "bench")
            objs = kustomizations(objects)
            await warm_up(recorder, objs[0], list(hooks.values()))
            cpu0 = services.cpu()["notifier"]
            emitted: dict[str, float] = {}
            start = time.perf_counter()
            end = start + seconds
            while (now := time.perf_counter()) < end:
                if rate is not None:  # pacing an open-loop load, not waiting for a result
                    due = start + len(emitted) / rate
                    if due > now:
                        await asyncio.sleep(due - now)
                n = len(emitted)
                emitted[await emit(recorder, objs[n % objects], n)] = time.perf_counter()
            stopped = time.perf_counter()
            in_window = min(len(h.requests) for h in hooks.values())
            async with asyncio.timeout(600):
                for h in hooks.values():
                    await h.wait_count(len(emitted))
            drained = time.perf_counter()
            cpu = services.cpu()["notifier"] - cpu0
        finally:
            services.stop()
        last: dict[str, float] = {}
        for name, h in hooks.items():
            got = [r.headers[EVENT_ID] for r in h.requests]
            assert sorted(got) == sorted(emitted), f"{name}: lost or duplicated events"
            for r in h.requests:
                last[r.headers[EVENT_ID]] = max(last.get(r.headers[EVENT_ID], 0.0), r.at)
        assert all(hmac_ok(r.body, r.headers["X-Signature"]) for r in signed.requests)
        assert all(r.json()["attachments"][0]["color"] == "good" for r in slack.requests)
    # Delivered to all three when publishing stopped: the slowest endpoint's count.
    return {
        "objects": objects,
        "rate": rate,
        "published": len(emitted),
        "published_per_s": len(emitted) / (stopped - start),
        "delivered_per_s": in_window / (stopped - start),
        "backlog": len(emitted) - in_window,
        "drain_s": drained - stopped,
        "overall_per_s": len(emitted) / (drained - start),
        "latency": [last[i] - t for i, t in emitted.items()],
        "cpu_per_event": cpu / len(emitted),
        "problems": services.problems(),
    }


# -- scenario 3: git push -> applied -----------------------------------------


def configmap(value: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: default\n"
        f"data:\n  message: {value}\n"
    )


class Timeline:
    """First time each value was seen, and a way to wait for one."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self._changed = asyncio.Condition()

    async def mark(self, value: str) -> None:
        if value not in self.seen:
            self.seen[value] = time.perf_counter()
            async with self._changed:
                self._changed.notify_all()

    async def at(self, value: str, timeout: float = 60) -> float:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: value in self.seen)
        return self.seen[value]


async def watch_configmap(kube: Access, seen: Timeline) -> None:
    """Kubernetes watch of ConfigMaps in `default` (re-opened when the server ends it)."""
    url = f"{kube.url}/api/v1/namespaces/default/configmaps"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with kube.session(timeout=timeout) as http:
        while True:
            async with http.get(url) as r:
                listing = await r.json()
            for item in listing.get("items", []):
                if item["metadata"]["name"] == "greeting":
                    await seen.mark(item["data"]["message"])
            rv = listing["metadata"]["resourceVersion"]
            params = {"watch": "true", "resourceVersion": rv}
            async with http.get(url, params=params) as r:
                async for line in r.content:
                    change = json.loads(line)
                    obj = change.get("object") or {}
                    if (obj.get("metadata") or {}).get("name") == "greeting":
                        await seen.mark((obj.get("data") or {}).get("message", ""))


async def watch_revisions(bus: Bus, seen: Timeline) -> None:
    async for change in bus.watch_status("GitRepository"):
        artifact = (change.value or {}).get("artifact") or {}
        if artifact.get("revision"):
            await seen.mark(artifact["revision"])


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def flux_objects(url: str) -> Iterator[dict[str, Any]]:
    yield secret("webhook-token", token=RECEIVER_TOKEN)
    yield {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "fleet", "namespace": NS},
        "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}},
    }
    yield {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": NS},
        "spec": {
            "interval": "1h",
            "path": "./",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
        },
    }
    yield {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "github", "namespace": NS},
        "spec": {
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": "webhook-token"},
            "resources": [{"kind": "GitRepository", "name": "fleet"}],
        },
    }


async def push_to_apply(tmp: Path, pushes: int, profile: Path | None) -> dict[str, Any]:
    root = tmp / "s3"
    git_root = root / "git"
    repo = make_repo(git_root, "fleet")
    repo.commit({"greeting.yaml": configmap("v0")}, branch="main", message="v0")
    server = GitHTTPServer(git_root, auth=None, receive_pack=True).start()
    kube, kubeconfig = start_kubelite(root)
    kube_access = Access.from_kubeconfig(kubeconfig)
    work = root / "clone"
    git(root, "clone", "-q", "--branch", "main", server.url(repo), str(work))
    git(work, "config", "user.email", "bench@example.com")
    git(work, "config", "user.name", "bench")
    receiver_port = free_port()
    samples: dict[str, list[float]] = {k: [] for k in ("push", "webhook", "artifact", "applied")}
    try:
        async with nats_and_bus(root) as (nats, bus):
            for doc in flux_objects(server.url(repo)):
                await store(bus, doc)
            services = Services(nats.url, profile, "push", root / "logs")
            services.start("source", "fluxbus_source")
            services.start("kustomize", "fluxbus_kustomize", KUBECONFIG=str(kubeconfig))
            await start_notifier(bus, services, f"127.0.0.1:{receiver_port}")
            applied, revisions = Timeline(), Timeline()
            watchers = [
                asyncio.create_task(watch_configmap(kube_access, applied), name="bench-kube-watch"),
                asyncio.create_task(watch_revisions(bus, revisions), name="bench-status-watch"),
            ]
            try:
                await applied.at("v0", timeout=60)

                async def webhook_path() -> str | None:
                    st = await bus.get_status(subjects.object_key("Receiver", NS, "github"))
                    return (st.value.get("webhookPath") if st else None) or None

                hook_url = f"http://127.0.0.1:{receiver_port}" + await wait(
                    webhook_path, 60, "Receiver webhookPath"
                )
                cpu0 = services.cpu()
                async with aiohttp.ClientSession() as http:

                    async def answered() -> bool:  # the Receiver server is listening
                        with contextlib.suppress(aiohttp.ClientError):
                            async with http.get(f"http://127.0.0.1:{receiver_port}/"):
                                return True
                        return False

                    await wait(answered, 30, "Receiver server listening")
                    for i in range(1, pushes + 1):
                        value = f"v{i}"
                        await asyncio.to_thread(
                            (work / "greeting.yaml").write_text, configmap(value)
                        )
                        await asyncio.to_thread(git, work, "commit", "-qam", value)
                        t0 = time.perf_counter()
                        await asyncio.to_thread(git, work, "push", "-q", "origin", "main")
                        pushed = time.perf_counter()
                        sha = await asyncio.to_thread(git, work, "rev-parse", "HEAD")
                        body = json.dumps(
                            {"ref": "refs/heads/main", "before": "0" * 40, "after": sha}
                        ).encode()
                        headers = {
                            "Content-Type": "application/json",
                            "X-GitHub-Event": "push",
                            "X-GitHub-Delivery": f"bench-{i}",
                            "X-Hub-Signature-256": hub_signature(RECEIVER_TOKEN, body),
                        }
                        async with http.post(hook_url, data=body, headers=headers) as r:
                            assert r.status == 200, (r.status, await r.text())
                        hooked = time.perf_counter()
                        fetched = await revisions.at(f"main@sha1:{sha}")
                        done = await applied.at(value)
                        samples["push"].append(pushed - t0)
                        samples["webhook"].append(hooked - pushed)
                        samples["artifact"].append(fetched - pushed)
                        samples["applied"].append(done - pushed)
                    async with (
                        kube_access.session() as kube_http,
                        kube_http.get(
                            f"{kube_access.url}/api/v1/namespaces/default/configmaps/greeting"
                        ) as r,
                    ):
                        assert (await r.json())["data"]["message"] == f"v{pushes}"
                cpu = {k: v - cpu0[k] for k, v in services.cpu().items()}
            finally:
                for task in watchers:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                services.stop()
    finally:
        server.stop()
        kube.terminate()
        kube.wait(timeout=20)
    return {
        "samples": samples,
        "cpu_per_push": {k: v / pushes for k, v in cpu.items()},
        "problems": services.problems(),
    }


async def main_async(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="fluxbus-notifier-bench-"))
    profile = Path(args.profile).resolve() if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    only = {int(x) for x in args.only.split(",")}
    results: dict[str, Any] = {}
    try:
        if 1 in only:
            results["latency"] = await latency(tmp, args.events, profile)
        if 2 in only:
            results["throughput"] = [
                await throughput(tmp, args.seconds, n, rate, profile)
                for n, rate in ((1, None), (args.objects, None), (args.objects, args.rate))
            ]
        if 3 in only:
            results["push"] = await push_to_apply(tmp, args.pushes, profile)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(args, results)
    if args.out:
        Path(args.out).write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="paced events/s (scenario 2)")
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--only", default="1,2,3", help="scenarios to run, e.g. 1,3")
    parser.add_argument("--profile", default="", help="directory for cProfile output")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "notifier.md"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for `make bench QUICK=1`: --events 100, --seconds 3.0, --objects 20, --rate 100.0, --pushes 10",
    )
    args = parser.parse_args()
    if args.quick:
        args.events = 100
        args.seconds = 3.0
        args.objects = 20
        args.rate = 100.0
        args.pushes = 10
    print(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
