"""The GitOps story of `make demo` as automated tests, on the demo's real world
(Git smart-HTTP server, docker-registry, the Slack stand-in, nats-server,
kubelite, the four service processes supervised as `fluxbus up` does), with
faults injected between its steps:

- kill -9 of each service in turn, each at a different step (the supervisor
  restarts it): the story completes, Git gets no duplicate commit, and no
  notification is lost at the Slack stand-in (deduplicated by event id);
- a NATS restart, then the Git host down for a while;
- a broken commit: the last good state is kept, the Alert fires, the fixing
  commit recovers.

Each run plays the whole story once; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fluxbus_cli import up
from fluxbus_cli.demo_story import (
    AUTOMATED_TAG,
    GIT_REPLICAS,
    HUMAN_TAG,
    OVERLAY,
    Notification,
    StepFailed,
    Story,
)
from fluxbus_cli.demo_world import BRANCH, World, demo_world, key
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_common.testing.plugin import wait_for

FAULT_TIMEOUT = 60.0
"""Seconds a fault's own waits may take (a restart with backoff, a Git retry)."""

Fault = Callable[[Story], Awaitable[None]]


def kill(service: str) -> Fault:
    """kill -9 the service's current process (its supervisor restarts it)."""

    async def fault(story: Story) -> None:
        child = story.world.stack.child(service)
        child.proc.send_signal(signal.SIGKILL)
        await child.proc.wait()
        story.out(f"  ⚡ killed {service} (pid {child.proc.pid}) with SIGKILL")

    return fault


async def restart_nats(story: Story) -> None:
    """Stop nats-server and start it again on the same port and JetStream directory.
    (The stack has no public restart for NATS: up's own spawn/stop are reused.)"""
    stack = story.world.stack
    old = stack.child("nats")
    await up._stop(old)
    await up._spawn(stack, "nats", old.argv, old.env, stack.quiet, stack.log_dir, replace=old)
    port = int(old.argv[old.argv.index("-p") + 1])
    await up._wait_port(port, stack.child("nats").proc, "nats-server")
    story.out("  ⚡ restarted nats-server")


def git_down_until_noticed(background: list[asyncio.Task[None]]) -> Fault:
    """Stop the Git host; bring it back once the source reports failing to fetch."""

    async def fault(story: Story) -> None:
        world = story.world
        await asyncio.to_thread(world.git.stop)
        story.out("  ⚡ Git host down")

        async def back_when_noticed() -> None:
            await wait_for(
                lambda: fetch_failed(story),
                timeout=FAULT_TIMEOUT,
                interval=0.1,
                message="the source reporting the Git host down",
            )
            await asyncio.to_thread(world.git.start)
            story.out("  ⚡ Git host back")

        background.append(asyncio.create_task(back_when_noticed(), name="git-host-back"))

    return fault


async def fetch_failed(story: Story) -> bool:
    status = await story.status(key("GitRepository", "gitops-repo"))
    return any(
        c.get("type") == "Ready" and c.get("status") == "False"
        for c in status.get("conditions") or []
    )


def commits_of(world: World) -> list[str]:
    return [c.message.strip() for c in world.repo.log(BRANCH, count=100)]


def texts(notifications: list[Notification]) -> list[str]:
    return [f"{n.author}: {n.text}" for n in notifications]


def assert_story_outcome(story: Story) -> None:
    """Git holds each commit once, the cluster and every notification of the story arrived."""
    world = story.world
    messages = commits_of(world)
    automated = [m for m in messages if m.startswith("Automated image update")]
    assert automated == [f"Automated image update: {HUMAN_TAG} -> {AUTOMATED_TAG}"], messages
    assert len(messages) == len(set(messages)) == 1 + len(story.commits) + 1, messages

    got = texts(story.notifications())
    expected = [
        *(f"stored artifact for commit '{m}'" for m in messages),
        "HorizontalPodAutoscaler/production/web deleted",
        f"resolved to {AUTOMATED_TAG}",
        "pushed commit",
    ]
    missing = [e for e in expected if not any(e in g for g in got)]
    assert missing == [], "\n".join(got)
    ids = [n.event_id for n in story.notifications()]
    assert all(ids) and len(ids) == len(set(ids))


@pytest.fixture
async def world(tmp_path: Path):
    async with demo_world(tmp_path / "demo", report=lambda line: None) as w:
        yield w


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({}, id="without-faults"),
        pytest.param(
            {
                2: kill("kustomize"),
                3: kill("source"),
                4: kill("notifier"),
                5: kill("image-reflector"),
            },
            id="each-service-killed-at-a-different-step",
        ),
    ],
)
async def test_the_story_completes_with_each_commit_once_and_every_notification(
    world: World, faults: dict[int, Fault]
):
    lines: list[str] = []
    story = Story(world, out=lines.append, hooks=faults, step_timeout=90)
    await story.play()
    print("\n".join(lines))
    assert_story_outcome(story)
    assert sum(c.restarts for c in world.stack.children) == len(faults)


@pytest.mark.timeout(240)
async def test_the_story_completes_across_a_nats_restart_and_the_git_host_down(world: World):
    background: list[asyncio.Task[None]] = []
    lines: list[str] = []
    story = Story(
        world,
        out=lines.append,
        hooks={3: restart_nats, 4: git_down_until_noticed(background)},
        step_timeout=90,
    )
    try:
        await story.play()
    finally:
        await cancel_and_wait(*background)
    print("\n".join(lines))
    assert "  ⚡ Git host back" in lines
    assert_story_outcome(story)


BROKEN = "  - does-not-exist.yaml\n"


@pytest.mark.timeout(240)
async def test_a_broken_commit_keeps_the_last_good_state_alerts_and_a_fix_recovers(
    world: World,
):
    observed: dict[str, object] = {}

    async def broken_then_fixed(story: Story) -> None:
        good = world.read(OVERLAY)
        broken_sha = await story.commit(
            {OVERLAY: good.replace("  - namespace.yaml\n", "  - namespace.yaml\n" + BROKEN)},
            "production: a resource that does not exist",
        )
        await story.announce(broken_sha)
        broken = story.revision(broken_sha)

        async def build_failed() -> dict | None:
            status = await story.status(key("Kustomization", "apps-production"))
            ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
            story.seen = str(ready and ready[0])
            failing = (
                ready
                and ready[0]["status"] == "False"
                and ready[0]["reason"] == "BuildFailed"
                and status.get("lastAttemptedRevision") == broken
            )
            return ready[0] if failing else None

        observed["condition"] = await wait_for(
            build_failed, FAULT_TIMEOUT, 0.1, "apps-production failing at the broken commit"
        )
        observed["message"] = story.seen
        observed["image"] = await story.production_image()
        observed["replicas"] = (await story.deployment())["spec"]["replicas"]
        observed["alert"] = await wait_for(
            lambda: [
                n
                for n in story.notifications()
                if n.color == "danger"
                and n.author.startswith("kustomization/apps-production.")
                and "does-not-exist.yaml" in n.text
            ],
            FAULT_TIMEOUT,
            0.1,
            "the Alert firing on the broken commit",
        )
        fixed = await story.commit({OVERLAY: good}, "production: fix the resources")
        await story.announce(fixed)
        await wait_for(
            lambda: story.applied("apps-production", story.revision(fixed)),
            FAULT_TIMEOUT,
            0.1,
            "apps-production applying the fixing commit",
        )

    story = Story(world, out=lambda line: None, hooks={5: broken_then_fixed}, step_timeout=90)
    await story.play()

    condition = observed["condition"]
    assert isinstance(condition, dict)
    assert "does-not-exist.yaml" in condition["message"], condition
    assert observed["image"].endswith(f":{HUMAN_TAG}")  # type: ignore[union-attr]
    assert observed["replicas"] == GIT_REPLICAS
    assert observed["alert"]
    assert_story_outcome(story)


async def test_a_step_that_does_not_happen_fails_naming_it_and_what_was_awaited(world: World):
    async def kustomize_gone(story: Story) -> None:
        await story.world.stack.stop_service("kustomize")

    story = Story(world, out=lambda line: None, hooks={2: kustomize_gone}, step_timeout=5)
    with pytest.raises(StepFailed) as failed:
        await story.play()
    assert failed.value.number == 2
    assert str(failed.value).startswith(
        "step 2 (drift reverted) did not happen: no production back at Git's 10 replicas"
    )
    assert "last seen: production replicas 7" in str(failed.value)
