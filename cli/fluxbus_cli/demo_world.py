"""The stage of `make demo`: every real component the GitOps story runs on.

`demo_world(state_dir)` starts, and stops in reverse order on exit:

- a bare Git repository holding a copy of `examples/gitops-repo` (`main`),
  served over Git smart HTTP (dulwich's server on 127.0.0.1, pushes allowed:
  the image automation pushes to it) — the same server the tests use;
- a local container registry (Debian's `docker-registry`) holding the app
  image `stefanprodan/podinfo:1.3.0`;
- a local webhook sink standing in for Slack (an aiohttp server recording
  every request);
- the stack (`fluxbus up`: nats-server, kubelite, the five services), the
  notifier's Receiver server on a known port;
- the example's `clusters/local/` objects stored, pointed at those servers,
  with the two Secrets Flux keeps out of Git (the Slack address, the
  Receiver's token).

`World` hands the story what it observes and acts on. Test support pieces of
fluxbus_git / fluxbus_image / fluxbus_notifier are reused on purpose: they are
real servers, the ones the e2e tests trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fluxbus_cli import store
from fluxbus_cli.secrets import secret_document
from fluxbus_cli.up import Stack, stack_up
from fluxbus_common import subjects
from fluxbus_common.api import GitRepository, ImageRepository, load_documents
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_git.testing import GitHTTPServer, GitRepo, make_repo
from fluxbus_git.testing.network import free_port
from fluxbus_image.testing.registry_server import RegistryServer
from fluxbus_notifier.testing.endpoints import Endpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops-repo"
NAMESPACE = "flux-system"
BRANCH = "main"
IMAGE_REPOSITORY = "stefanprodan/podinfo"
"""The app image's repository in the local registry (the example names ghcr.io's)."""
FIRST_TAG = "1.3.0"
SLACK_PATH = "/services/T0DEMO/B0DEMO/fluxbus"
"""Where the Slack stand-in listens, shaped like an incoming-webhook URL."""
SLACK_SECRET = "slack-webhook"
TOKEN_SECRET = "webhook-token"


def key(kind: str, name: str) -> str:
    """The store key of a `flux-system` object of the example."""
    return subjects.object_key(kind, NAMESPACE, name)


@dataclass
class World:
    """The running components of the demo (see the module docstring)."""

    stack: Stack
    bus: Bus
    repo: GitRepo
    git: GitHTTPServer
    registry: RegistryServer
    sink: Endpoint
    receiver_base: str
    """`http://127.0.0.1:<port>` of the notifier's Receiver server."""
    webhook_token: str
    kube_cache: Path
    objects: list[Any] = field(default_factory=list)
    """The stored `clusters/local/` objects (validated models)."""

    @property
    def image(self) -> str:
        """The app image name in the local registry (what the ImageRepository scans)."""
        return self.registry.image(IMAGE_REPOSITORY)

    def keys_of(self, kind: str) -> list[str]:
        """Store keys of the example's objects of `kind`, in file order."""
        return [o.key for o in self.objects if o.kind == kind]

    def push_tag(self, tag: str) -> None:
        """Push the app image's `tag` to the local registry (blocking: call in a thread)."""
        self.registry.push_tag(IMAGE_REPOSITORY, tag)

    def head(self) -> str:
        """The commit id at the tip of `main` in the served repository."""
        return self.repo.head(BRANCH)

    def read(self, path: str) -> str:
        """A file of the repository at the tip of `main`."""
        return self.repo.show(path, BRANCH)


def example_manifests(git_url: str, image: str, slack_address: str, token: str) -> list[Any]:
    """The objects of `examples/gitops-repo/clusters/local/` pointed at the demo's servers,
    preceded by the Secrets they reference. Raises InvalidObject if a file is invalid."""
    docs: list[Any] = [
        *load_documents(
            yaml.safe_dump(
                secret_document(SLACK_SECRET, NAMESPACE, {"address": slack_address.encode()})
            ),
            "slack secret",
        ),
        *load_documents(
            yaml.safe_dump(secret_document(TOKEN_SECRET, NAMESPACE, {"token": token.encode()})),
            "token secret",
        ),
    ]
    for path in sorted((EXAMPLE / "clusters" / "local").glob("*.yaml")):
        docs += load_documents(path.read_text(), str(path.relative_to(ROOT)))
    for obj in docs:
        if isinstance(obj, GitRepository):
            obj.spec.url = git_url
        elif isinstance(obj, ImageRepository):
            obj.spec.image = image
            obj.spec.insecure = True  # the local registry speaks plain http
    return docs


def _slack_address(sink: Endpoint) -> str:
    return sink.url_for(SLACK_PATH)


@contextlib.asynccontextmanager
async def demo_world(
    state_dir: Path,
    *,
    report: Callable[[str], None] | None = None,
) -> AsyncIterator[World]:
    """Start every component (see the module docstring) under `state_dir` and store the
    example's objects; stop everything on exit. Service logs go to `<state_dir>/logs`.

    Raises RuntimeError naming the component that did not start."""
    async with contextlib.AsyncExitStack() as stack:
        git_root = state_dir / "git"
        await asyncio.to_thread(git_root.mkdir, parents=True, exist_ok=True)
        repo = make_repo(git_root, "gitops-repo")
        stack.callback(repo.close)
        await asyncio.to_thread(
            repo.commit_directory,
            EXAMPLE,
            branch=BRANCH,
            message="Add the example GitOps repository",
        )
        repo.set_default_branch(BRANCH)
        git = GitHTTPServer(git_root, backend="dulwich", receive_pack=True)
        await asyncio.to_thread(git.start)
        stack.callback(git.stop)

        registry = RegistryServer(state_dir / "registry")
        await asyncio.to_thread(registry.start)
        stack.callback(registry.stop)
        await asyncio.to_thread(registry.push_tag, IMAGE_REPOSITORY, FIRST_TAG)

        sink = await stack.enter_async_context(Endpoint())
        receiver_port = free_port()
        running = await stack.enter_async_context(
            stack_up(
                state_dir,
                quiet=True,
                log_dir=state_dir / "logs",
                extra_env={"FLUXBUS_RECEIVER_ADDR": f"127.0.0.1:{receiver_port}"},
                report=report or _report,
            )
        )
        bus = await Bus.connect(BusSettings(url=running.nats_url), "demo")
        stack.push_async_callback(bus.close)
        token = secrets.token_hex(16)
        world = World(
            stack=running,
            bus=bus,
            repo=repo,
            git=git,
            registry=registry,
            sink=sink,
            receiver_base=f"http://127.0.0.1:{receiver_port}",
            webhook_token=token,
            kube_cache=state_dir / "kube-cache",
        )
        world.objects = example_manifests(git.url(repo), world.image, _slack_address(sink), token)
        for obj in world.objects:
            await store.put(bus, obj)
        yield world


def _report(message: str) -> None:
    print(f"  ⚠ {message}", file=sys.stderr, flush=True)
