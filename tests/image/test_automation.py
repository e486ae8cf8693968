"""ImageUpdateAutomation beyond the happy path: signed commits, policy selectors,
a template that cannot render, and a push that loses a race with another writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from image_helpers import (
    NS,
    apply,
    automation,
    basic_auth_secret,
    git_repository,
    image_policy,
    image_repository,
    image_service,
    ready_of,
    status,
    wait_condition,
    wait_ready,
)
from test_image_service import DEPLOYMENT

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_git.testing.gpg import GPGKeys


async def setup(
    bus: Bus, registry: Any, git_repo: GitRepo, server: GitHTTPServer, **git: Any
) -> str:
    image = f"{registry.host}/web"
    git_repo.commit({"web.yaml": DEPLOYMENT.format(image=image)}, branch="main", message="init")
    registry.push_tag("web", "1.0.0")
    registry.push_tag("web", "1.4.0")
    await apply(
        bus,
        basic_auth_secret("git-auth", server.username, server.password),
        git_repository("fleet", server.url(git_repo), secretRef={"name": "git-auth"}),
        image_repository("web", image, insecure=True),
        image_policy("web", "web", {"semver": {"range": "1.x"}}),
        automation("fleet", "fleet", push={"branch": "main"}, **git),
    )
    return image


async def test_commits_are_signed_with_the_openpgp_key_of_the_secret(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    gpg_keys: GPGKeys,
    tmp_path: Path,
):
    key = gpg_keys.protected
    await apply(
        bus,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "signing", "namespace": NS},
            "stringData": {"git.asc": key.armored.decode(), "passphrase": key.passphrase or ""},
        },
    )
    await setup(
        bus,
        registry,
        git_repo,
        git_http_basic_server,
        commit={
            "author": {"name": "fluxbot", "email": "fluxbot@example.com"},
            "signingKey": {"secretRef": {"name": "signing"}},
        },
    )
    async with image_service(bus_settings, tmp_path):
        st = await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: s.get("lastPushCommit"), timeout=30
        )
    commit = git_repo.log(st["lastPushCommit"])[0]
    assert commit.signed and (commit.author_name, commit.author_email) == (
        "fluxbot",
        "fluxbot@example.com",
    )
    verified, output = git_repo.verify_commit(commit.sha, gpg_keys.verify_home)
    assert verified, output
    assert key.passphrase not in str(await status(bus, "ImageUpdateAutomation", "fleet"))


async def test_a_template_that_cannot_render_pushes_nothing_and_names_the_position(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    tmp_path: Path,
):
    await setup(
        bus,
        registry,
        git_repo,
        git_http_basic_server,
        commit={
            "author": {"email": "fluxbot@example.com"},
            "messageTemplate": "Update\n{{ range .Changed.Nope }}x{{ end }}",
        },
    )
    start = git_repo.head("main")
    async with image_service(bus_settings, tmp_path):
        failed = await wait_condition(bus, "ImageUpdateAutomation", "fleet", "False", timeout=30)
    message = ready_of(failed)["message"]
    assert ready_of(failed)["reason"] == "GitOperationFailed"
    assert "commit message:2:" in message and "Nope" in message
    assert git_repo.head("main") == start


async def test_only_the_policies_the_selector_picks_are_applied(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    tmp_path: Path,
):
    image = await setup(bus, registry, git_repo, git_http_basic_server)
    doc = automation("fleet", "fleet", push={"branch": "main"})
    doc["spec"]["policySelector"] = {"matchLabels": {"auto": "yes"}}
    await apply(bus, doc)
    start = git_repo.head("main")
    async with image_service(bus_settings, tmp_path):
        st = await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: "observedPolicies" in s, timeout=30
        )
        assert st["observedPolicies"] == {} and git_repo.head("main") == start
        labelled = image_policy("web", "web", {"semver": {"range": "1.x"}})
        labelled["metadata"]["labels"] = {"auto": "yes"}
        await apply(bus, labelled)
        await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: s.get("lastPushCommit"), timeout=30
        )
    assert f"{image}:1.4.0" in git_repo.show("web.yaml", "main")


class RacingWriter:
    """The real Git writer, but another commit lands on the remote just before our first push."""

    def __init__(self, inner: Any, repo: GitRepo) -> None:
        self.inner = inner
        self.repo = repo
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def push(self, *args: Any, **kwargs: Any) -> Any:
        if not self.raced:
            self.raced = True
            self.repo.commit({"other.txt": "someone else\n"}, branch="main", message="meanwhile")
        return await self.inner.push(*args, **kwargs)


async def test_a_push_that_loses_a_race_is_redone_on_the_new_tip(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    tmp_path: Path,
    monkeypatch: Any,
):
    from fluxbus_image import app

    real = app.GitWriter
    writers: list[RacingWriter] = []

    def racing() -> RacingWriter:
        writer = RacingWriter(real(), git_repo)
        writers.append(writer)
        return writer

    monkeypatch.setattr(app, "GitWriter", racing)
    image = await setup(bus, registry, git_repo, git_http_basic_server)
    async with image_service(bus_settings, tmp_path):
        st = await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: s.get("lastPushCommit"), timeout=30
        )
    assert writers and writers[0].raced
    log = git_repo.log("main", count=3)
    assert [c.message.strip() for c in log] == [
        "Update from image update automation",
        "meanwhile",
        "init",
    ]
    assert st["lastPushCommit"] == log[0].sha
    assert f"{image}:1.4.0" in git_repo.show("web.yaml", "main")
    assert git_repo.show("other.txt", "main") == "someone else\n"
