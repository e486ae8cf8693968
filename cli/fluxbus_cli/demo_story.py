"""The GitOps story `make demo` plays, step by step, each step printed when it is
observed in the cluster, Git, the registry or the webhook sink.

1. all Kustomizations Ready (production after staging, its dependency);
2. a manual drift (`kubectl scale` production to 7) reverted to Git's replicas;
3. a commit bumping production's image 1.3.0 → 1.4.0, announced through the
   GitHub Receiver webhook, rolled out;
4. an orphan (the HPA, removed from Git) pruned;
5. a new tag 1.4.1 in the registry → the ImagePolicy picks it → the
   ImageUpdateAutomation commits it to Git → deployed;
6. the notifications the Slack stand-in received, listed;
7. stable: everything synced to Git's tip.

Every wait has a deadline (no fixed sleeps): a step that does not happen in
time raises `StepFailed` naming it and what was last seen. `hooks` run before
a step (the e2e tests inject faults there); `commit` hooks let a test make a
commit go through a broken one first.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from fluxbus_cli.demo_world import BRANCH, World, key
from fluxbus_common.conditions import ConditionType
from fluxbus_common.reconcile_requests import request_reconcile
from fluxbus_notifier.logic.webhooks import hub_signature
from fluxbus_notifier.providers import EVENT_ID_HEADER

T = TypeVar("T")

STEP_TIMEOUT = 120.0
"""Seconds each step may take (a cold start takes ~10, a rollout ~1; faults need more)."""
POLL = 0.2
"""Seconds between two looks at something not observable by a watch (kubectl, Git)."""
PRODUCTION = "production"
OVERLAY = "apps/overlays/production/kustomization.yaml"
HPA_FILE = "apps/overlays/production/hpa.yaml"
GIT_REPLICAS = 10
DRIFT_REPLICAS = 7
HUMAN_TAG = "1.4.0"
AUTOMATED_TAG = "1.4.1"
KUSTOMIZATIONS = ("apps-dev", "apps-staging", "apps-production")
TAG_LINE = re.compile(r'(newTag: )"?([^"\s#]+)"?')

Hook = Callable[["Story"], Awaitable[None]]


class StepFailed(Exception):
    """A step did not happen within its deadline."""

    def __init__(self, number: int, title: str, waiting_for: str, seen: str) -> None:
        self.number, self.title, self.waiting_for = number, title, waiting_for
        super().__init__(
            f"step {number} ({title}) did not happen: no {waiting_for} within the deadline"
            + (f"; last seen: {seen}" if seen else "")
        )


@dataclass
class Notification:
    """One Slack message the sink received (the first copy of its event id)."""

    event_id: str
    author: str
    text: str
    color: str
    fields: dict[str, str]


@dataclass
class Story:
    """The seven steps over a running `World` (see the module docstring)."""

    world: World
    out: Callable[[str], None] = lambda line: print(line, flush=True)
    hooks: Mapping[int, Hook] = field(default_factory=dict)
    """Run before step n (1-based) starts."""
    step_timeout: float = STEP_TIMEOUT
    commits: list[tuple[str, str]] = field(default_factory=list)
    """(commit id, message) of every commit the story made itself, in order."""
    waiting_for: str = ""
    seen: str = ""
    started: float = field(default_factory=time.monotonic)

    STEPS = (
        "all Kustomizations Ready",
        "drift reverted",
        "new image committed, announced, rolled out",
        "orphan pruned",
        "new tag → policy → Git commit → deployed",
        "notifications received",
        "stable",
    )

    async def play(self) -> None:
        """Play every step in order; raises StepFailed naming the first that did not happen."""
        steps = (
            self.step_ready,
            self.step_drift,
            self.step_bump,
            self.step_prune,
            self.step_automation,
            self.step_notifications,
            self.step_stable,
        )
        for number, (title, step) in enumerate(zip(self.STEPS, steps, strict=True), start=1):
            if number in self.hooks:
                await self.hooks[number](self)
            self.out(f"\n{number}. {title}")
            self.waiting_for, self.seen = title, ""
            try:
                async with asyncio.timeout(self.step_timeout):
                    await step()
            except TimeoutError:
                raise StepFailed(number, title, self.waiting_for, self.seen) from None

    def say(self, line: str) -> None:
        """Print one observation, stamped with the seconds since the story started."""
        self.out(f"  [{time.monotonic() - self.started:6.1f}s] ✔ {line}")

    async def until(self, what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
        """Return the first truthy result of `probe`, looked at every POLL seconds
        (the step's deadline bounds it). `what` names it in a failure."""
        self.waiting_for = what
        while True:
            result = await probe()
            if result:
                return result
            await asyncio.sleep(POLL)

    # -- what the story observes ----------------------------------------------------------

    async def status(self, store_key: str) -> dict[str, Any]:
        entry = await self.world.bus.get_status(store_key)
        return dict(entry.value) if entry is not None and entry.value else {}

    async def ready(self, store_key: str) -> dict[str, Any] | None:
        """The status of `store_key` when it is Ready=True, else None (remembering why)."""
        status = await self.status(store_key)
        cond = next(
            (c for c in status.get("conditions") or [] if c.get("type") == ConditionType.READY),
            None,
        )
        if cond is not None and cond.get("status") == "True":
            return status
        self.seen = f"{store_key}: {cond.get('message') if cond else 'not reconciled yet'}"
        return None

    async def applied(self, name: str, revision: str) -> dict[str, Any] | None:
        """The Kustomization's status once Ready at `revision`."""
        status = await self.ready(key("Kustomization", name))
        if status is None or status.get("lastAppliedRevision") != revision:
            if status is not None:
                self.seen = f"{name} at {status.get('lastAppliedRevision')}"
            return None
        return status

    async def kubectl(self, *args: str) -> tuple[int, str]:
        """Run the real kubectl against the demo's cluster; (exit code, stdout + stderr)."""
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "kubectl"),
            "--kubeconfig",
            self.world.stack.kubeconfig,
            "--cache-dir",
            str(self.world.kube_cache),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return int(proc.returncode or 0), out.decode(errors="replace")

    async def deployment(self) -> dict[str, Any]:
        """Production's Deployment `web` as the cluster has it ({} if absent)."""
        code, out = await self.kubectl("get", "deployment", "web", "-n", PRODUCTION, "-o", "json")
        return json.loads(out) if code == 0 else {}

    async def production_image(self) -> str:
        spec = (await self.deployment()).get("spec") or {}
        containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
        return str(containers[0].get("image", ""))

    def revision(self, sha: str) -> str:
        return f"{BRANCH}@sha1:{sha}"

    def notifications(self) -> list[Notification]:
        """Slack messages received, one per event id (a redelivery carries the same id)."""
        seen: dict[str, Notification] = {}
        for request in self.world.sink.received("POST"):
            event_id = request.headers.get(EVENT_ID_HEADER, "")
            if event_id in seen:
                continue
            body = request.json()
            attachment = (body.get("attachments") or [{}])[0]
            fields = {f["title"]: f["value"] for f in attachment.get("fields") or []}
            seen[event_id] = Notification(
                event_id,
                attachment.get("author_name", ""),
                attachment.get("text", ""),
                attachment.get("color", ""),
                fields,
            )
        return list(seen.values())

    # -- what the story does ----------------------------------------------------------------

    async def commit(self, files: Mapping[str, str | None], message: str) -> str:
        """Commit `files` (None deletes) on `main` of the served repository, as a push would."""
        sha = await asyncio.to_thread(self.world.repo.commit, dict(files), BRANCH, message)
        self.commits.append((sha, message))
        self.say(f"pushed {sha[:12]} “{message}”")
        return sha

    async def announce(self, sha: str) -> None:
        """Deliver GitHub's signed push webhook for `sha` to the Receiver, retried until
        the Receiver accepts it (GitHub redelivers too)."""
        path = await self.until(
            "Receiver webhook path",
            lambda: self._webhook_path(),
        )
        body = json.dumps({"ref": f"refs/heads/{BRANCH}", "after": sha}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"demo-{sha[:12]}",
            "X-Hub-Signature-256": hub_signature(self.world.webhook_token, body),
        }
        self.waiting_for = "Receiver accepting the push webhook"
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.post(
                        self.world.receiver_base + path, data=body, headers=headers
                    ) as resp:
                        if resp.status == 200:
                            break
                        self.seen = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                except aiohttp.ClientError as e:
                    self.seen = f"Receiver unreachable: {e}"
                await asyncio.sleep(POLL)
        self.say("GitHub push webhook accepted by Receiver/github")

    async def _webhook_path(self) -> str | None:
        status = await self.status(key("Receiver", "github"))
        return status.get("webhookPath") or None

    async def rolled_out(self, sha: str, what: str) -> None:
        """Wait until the source has `sha` and every Kustomization applied it."""
        revision = self.revision(sha)

        async def fetched() -> bool:
            status = await self.ready(key("GitRepository", "gitops-repo"))
            artifact = (status or {}).get("artifact") or {}
            self.seen = f"source at {artifact.get('revision')}"
            return artifact.get("revision") == revision

        await self.until(f"GitRepository fetching {revision}", fetched)
        self.say(f"GitRepository/gitops-repo fetched {revision}")
        for name in KUSTOMIZATIONS:
            await self.until(f"{name} applying {revision}", partial(self.applied, name, revision))
        self.say(f"{what}: every Kustomization applied {revision}")

    # -- the steps ----------------------------------------------------------------------------

    async def step_ready(self) -> None:
        head = self.revision(self.world.head())
        pending = list(KUSTOMIZATIONS)

        async def next_ready() -> str | None:
            for name in pending:
                if await self.applied(name, head):
                    return name
            return None

        while pending:
            name = await self.until(f"{', '.join(pending)} Ready at {head}", next_ready)
            pending.remove(name)
            after = " (after staging, its dependency)" if name == "apps-production" else ""
            self.say(f"Kustomization/{name} Ready: applied {head}{after}")

    async def step_drift(self) -> None:
        code, out = await self.kubectl(
            "scale", "deployment/web", "-n", PRODUCTION, f"--replicas={DRIFT_REPLICAS}"
        )
        if code != 0:
            self.seen = out.strip()
        await self.until(
            f"production scaled to {DRIFT_REPLICAS}",
            lambda: self._replicas_are(DRIFT_REPLICAS),
        )
        self.say(f"kubectl scale: production runs {DRIFT_REPLICAS} replicas (drift)")
        await request_reconcile(self.world.bus, key("Kustomization", "apps-production"))
        self.say("fluxbus reconcile kustomization apps-production")
        await self.until(
            f"production back at Git's {GIT_REPLICAS} replicas",
            lambda: self._replicas_are(GIT_REPLICAS),
        )
        self.say(f"drift detected and reverted: production back to {GIT_REPLICAS} replicas")

    async def _replicas_are(self, count: int) -> bool:
        replicas = (await self.deployment()).get("spec", {}).get("replicas")
        self.seen = f"production replicas {replicas}"
        return bool(replicas == count)

    async def step_bump(self) -> None:
        await asyncio.to_thread(self.world.push_tag, HUMAN_TAG)
        self.say(f"registry: pushed {self.world.image}:{HUMAN_TAG}")
        overlay = self.world.read(OVERLAY)
        sha = await self.commit(
            {OVERLAY: TAG_LINE.sub(f'\\g<1>"{HUMAN_TAG}"', overlay, count=1)},
            f"production: podinfo {HUMAN_TAG}",
        )
        await self.announce(sha)
        await self.rolled_out(sha, "rolled out")
        await self.until(f"production running {HUMAN_TAG}", lambda: self._image_is(HUMAN_TAG))
        self.say(f"production runs {await self.production_image()}")
        # The registry scan comes after the commit: an ImagePolicy behind Git would have the
        # automation write its older tag back (Flux does the same). Now both agree.
        await self.scan_until_picked(HUMAN_TAG)
        self.say(f"ImagePolicy/podinfo picked {HUMAN_TAG}, as Git has it: nothing to commit")

    async def scan_until_picked(self, tag: str) -> None:
        """Request a registry scan (as a registry webhook or `fluxbus reconcile image
        repository podinfo` would) and wait until the ImagePolicy picked `tag`."""
        await request_reconcile(self.world.bus, key("ImageRepository", "podinfo"))

        async def picked() -> bool:
            status = await self.ready(key("ImagePolicy", "podinfo"))
            latest = ((status or {}).get("latestRef") or {}).get("tag")
            self.seen = f"ImagePolicy latest tag {latest}"
            return latest == tag

        await self.until(f"ImagePolicy picking {tag}", picked)

    async def _image_is(self, tag: str) -> bool:
        image = await self.production_image()
        self.seen = f"production image {image}"
        return image.endswith(f":{tag}")

    async def step_prune(self) -> None:
        overlay = self.world.read(OVERLAY)
        sha = await self.commit(
            {HPA_FILE: None, OVERLAY: overlay.replace("  - hpa.yaml\n", "")},
            "production: drop the HorizontalPodAutoscaler",
        )
        await self.announce(sha)
        await self.rolled_out(sha, "applied")

        async def pruned() -> bool:
            code, out = await self.kubectl("get", "hpa", "web", "-n", PRODUCTION)
            self.seen = out.strip()
            return code != 0 and "NotFound" in out

        await self.until("the HPA pruned from production", pruned)
        self.say("HorizontalPodAutoscaler/production/web pruned (no longer in Git)")

    async def step_automation(self) -> None:
        before = self.world.head()
        await asyncio.to_thread(self.world.push_tag, AUTOMATED_TAG)
        self.say(f"registry: pushed {self.world.image}:{AUTOMATED_TAG}")
        await self.scan_until_picked(AUTOMATED_TAG)
        self.say(f"registry scanned; ImagePolicy/podinfo picked {AUTOMATED_TAG}")

        async def committed() -> str | None:
            head = self.world.head()
            if head == before or f'"{AUTOMATED_TAG}"' not in self.world.read(OVERLAY):
                self.seen = f"main at {head[:12]}"
                return None
            return head

        sha = await self.until(f"an automation commit with {AUTOMATED_TAG}", committed)
        message = self.world.repo.log(BRANCH)[0].message.strip()
        self.say(f"ImageUpdateAutomation pushed {sha[:12]} “{message}”")
        await self.rolled_out(sha, "deployed")
        await self.until(
            f"production running {AUTOMATED_TAG}", lambda: self._image_is(AUTOMATED_TAG)
        )
        self.say(f"production runs {await self.production_image()}")

    async def step_notifications(self) -> None:
        head = self.revision(self.world.head())

        async def arrived() -> list[Notification] | None:
            found = self.notifications()
            self.seen = f"{len(found)} notifications"
            return found if any(self._about_production_at(n, head) for n in found) else None

        found = await self.until(f"a notification of apps-production at {head}", arrived)
        self.say(f"the Slack stand-in received {len(found)} notifications:")
        for n in found:
            mark = "✘" if n.color == "danger" else "•"
            self.out(f"      {mark} {n.author}: {n.text.splitlines()[0][:90]}")

    @staticmethod
    def _about_production_at(n: Notification, revision: str) -> bool:
        return n.author.startswith("kustomization/apps-production.") and any(
            v == revision for v in n.fields.values()
        )

    async def step_stable(self) -> None:
        head = self.revision(self.world.head())
        for name in KUSTOMIZATIONS:
            await self.until(f"{name} Ready at {head}", partial(self.applied, name, head))
        for kind, name in (
            ("GitRepository", "gitops-repo"),
            ("ImageRepository", "podinfo"),
            ("ImagePolicy", "podinfo"),
            ("ImageUpdateAutomation", "gitops-repo"),
            ("Provider", "slack"),
            ("Alert", "gitops"),
            ("Receiver", "github"),
        ):
            await self.until(f"{kind}/{name} Ready", partial(self.ready, key(kind, name)))
        await self.until(
            f"production running {AUTOMATED_TAG}", lambda: self._image_is(AUTOMATED_TAG)
        )
        await self.until(
            f"production at {GIT_REPLICAS} replicas", lambda: self._replicas_are(GIT_REPLICAS)
        )
        self.say(f"everything synced to {head}; nothing left to do")
