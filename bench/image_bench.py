"""Benchmark of the image-reflector against the real Docker Distribution registry.

Scenarios (goals from issue 9):
  a. scan of a repository with 10 000 tags: HTTP requests        (goal <= 12)
  b. CPU of that scan in this process (client + exclusion + checksum) (goal <= 100 ms)
  c. rescan of the unchanged repository: HTTP requests           (goal <= 3)
  d. tag pushed to the registry -> commit pushed to Git, through the whole
     service (scan on request, policy over the bus, clone, setters, commit,
     push), p50 / max over several pushes

(a)-(c) run with anonymous and Bearer-token auth, and with the registry front
paging at 1000 tags (as Docker Hub, GHCR and Harbor do) and answering every
tag in one page (Distribution itself ignores `n`).

    .venv/bin/python bench/image_bench.py [--tags 10000] [--pushes 10] [--out bench/results/image.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_common.testing.plugin import NatsServer
from fluxbus_git.testing import GitHTTPServer, make_repo
from fluxbus_image import app
from fluxbus_image.logic.exclusion import exclude_tags
from fluxbus_image.logic.reference import parse_image
from fluxbus_image.logic.scan import latest_tags, tags_checksum
from fluxbus_image.registry import RegistryClient
from fluxbus_image.settings import ImageSettings
from fluxbus_image.testing.registry_server import RegistryServer

NS = "flux-system"


def ms(v: float) -> str:
    return f"{v * 1000:.1f}"


async def scan_rows(tmp: Path, tags: int) -> list[str]:
    rows = []
    for auth in ("none", "token"):
        server = RegistryServer(tmp / f"registry-{auth}", auth=auth).start()
        try:
            names = [f"1.{i // 100}.{i % 100}" for i in range(tags)]
            server.push_tags("app", names, via_storage=True)
            image = parse_image(server.image("app"))
            creds = None
            if auth == "token":
                from fluxbus_image.logic.credentials import credentials_for

                creds = credentials_for(image, server.docker_config())
            for paging in ("1000 per page", "one page"):
                assert server.front is not None
                server.front.max_page_size = 1000 if paging == "1000 per page" else None
                server.front.ignore_n = paging == "one page"
                client = RegistryClient()
                try:
                    server.reset_counters()
                    cpu = time.thread_time()
                    wall = time.perf_counter()
                    listing = await client.list_tags(image, credentials=creds, insecure=True)
                    kept = exclude_tags(listing.tags, None)
                    tags_checksum(kept)
                    latest_tags(kept)
                    cpu = time.thread_time() - cpu
                    wall = time.perf_counter() - wall
                    cold = server.requests + (
                        server.token_server.requests if server.token_server else 0
                    )
                    assert len(kept) == tags, len(kept)
                    server.reset_counters()
                    rcpu = time.thread_time()
                    await client.list_tags(image, credentials=creds, insecure=True)
                    rcpu = time.thread_time() - rcpu
                    warm = server.requests + (
                        server.token_server.requests if server.token_server else 0
                    )
                finally:
                    await client.close()
                rows.append(
                    f"| {auth} | {paging} | {tags} | {cold} | {ms(cpu)} | {ms(wall)} "
                    f"| {warm} | {ms(rcpu)} |"
                )
        finally:
            server.stop()
    return rows


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:web"}}
"""


async def wait(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.005)


async def latency_rows(tmp: Path, pushes: int) -> tuple[list[float], int]:
    nats = NatsServer(tmp / "nats")
    nats.start()
    registry = RegistryServer(tmp / "registry-latency").start()
    git_root = tmp / "git"
    repo = make_repo(git_root, "fleet")
    git = GitHTTPServer(git_root, auth=None, receive_pack=True).start()
    image = registry.image("web")
    repo.commit({"web.yaml": DEPLOYMENT.format(image=image)}, branch="main", message="init")
    registry.push_tag("web", "1.0.0")
    settings = BusSettings(url=nats.url)
    bus = await Bus.connect(settings, "bench")
    stop = asyncio.Event()
    service = asyncio.create_task(
        app.run(
            settings,
            RuntimeSettings(workers=4, shards=1, lease_ttl=5, instance="bench", http_addr=""),
            stop=stop,
            settings=ImageSettings(work_dir=tmp / "work"),
        )
    )
    samples: list[float] = []
    try:
        docs = [
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "fleet", "namespace": NS},
                "spec": {"interval": "1h", "url": git.url(repo), "ref": {"branch": "main"}},
            },
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageRepository",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"image": image, "interval": "1h", "insecure": True},
            },
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {
                    "imageRepositoryRef": {"name": "web"},
                    "policy": {"semver": {"range": "1.x"}},
                },
            },
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageUpdateAutomation",
                "metadata": {"name": "fleet", "namespace": NS},
                "spec": {
                    "interval": "1h",
                    "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                    "git": {
                        "commit": {"author": {"name": "bot", "email": "bot@example.com"}},
                        "push": {"branch": "main"},
                    },
                },
            },
        ]
        for doc in docs:
            key = subjects.object_key(doc["kind"], NS, doc["metadata"]["name"])
            await bus.apply_object(key, doc)

        async def policy_at(tag: str) -> bool:
            st = await bus.get_status(subjects.object_key("ImagePolicy", NS, "web"))
            return bool(st and (st.value.get("latestRef") or {}).get("tag") == tag)

        await wait(lambda: policy_at("1.0.0"))
        repo_key = subjects.object_key("ImageRepository", NS, "web")
        for i in range(1, pushes + 1):
            tag = f"1.{i}.0"
            head = repo.head("main")
            start = time.perf_counter()
            registry.push_tag("web", tag)
            entry = await bus.get_object(repo_key)
            assert entry is not None
            entry.value["metadata"].setdefault("annotations", {})[
                "reconcile.fluxcd.io/requestedAt"
            ] = f"bench-{i}"
            await bus.update_object(repo_key, entry.value, entry.revision)

            async def moved(previous: str = head) -> bool:
                return repo.head("main") != previous

            await wait(moved)
            samples.append(time.perf_counter() - start)
    finally:
        stop.set()
        try:
            async with asyncio.timeout(20):
                await asyncio.shield(service)
        except TimeoutError:
            await cancel_and_wait(service)
        await bus.close()
        git.stop()
        registry.stop()
        nats.stop()
    return samples, pushes


async def main_async(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="fluxbus-image-bench-"))
    try:
        rows = await scan_rows(tmp, args.tags)
        samples, pushes = await latency_rows(tmp, args.pushes)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    lines = [
        "# image-reflector benchmark",
        "",
        f"Machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {len(__import__('os').sched_getaffinity(0))} cores. "
        f"Registry: Docker Distribution (Debian `docker-registry`) behind the test front, "
        f"{args.tags} tags.",
        "",
        "## Scan of a large repository (goals: <= 12 requests, <= 100 ms CPU; rescan <= 3 requests)",
        "",
        "| auth | registry paging | tags | scan requests | scan CPU ms | scan wall ms "
        "| rescan requests | rescan CPU ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Requests count everything the registry and the token server received (ping, token, "
        "pages). CPU is the event-loop thread's (time.thread_time: the client parsing every page, the exclusion list, "
        "Flux's checksum and the latest tags), wall includes the registry's and the in-process paging front's time (the front, a Python proxy in this process, is not counted in CPU).",
        "",
        "## Tag pushed -> commit pushed (whole service, in-process, one NATS server)",
        "",
        f"{pushes} pushes: p50 {ms(statistics.median(samples))} ms, "
        f"max {ms(max(samples))} ms, min {ms(min(samples))} ms.",
        "",
        "Each sample: push a tag through the registry API, set the ImageRepository's "
        "reconcile request (what a registry webhook through a Receiver does), then wait "
        "until the Git remote's branch moved. Includes the scan, the ImagePolicy woken "
        "through the bus, the automation woken by the policy's status, a clone, the "
        "setters, the commit and the push.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "image.md"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for `make bench QUICK=1`: --tags 2000, --pushes 3",
    )
    args = parser.parse_args()
    if args.quick:
        args.tags = 2000
        args.pushes = 3
    print(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
