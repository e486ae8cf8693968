"""The GitRepository reconciler end to end: a real Git smart-HTTP server, a
real nats-server, the controller runtime, and the artifact in the object store."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

from source_helpers import gitrepository, key_of, ready_of, source_service, status

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo


async def wait_revision(bus: Bus, name: str, revision: str, timeout: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        st = await status(bus, name)
        ready = ready_of(st)
        art = st.get("artifact") or {}
        ok = ready and ready["status"] == "True" and art.get("revision") == revision
        return st if ok else None

    return await wait_for(check, timeout=timeout, message=f"{name} at {revision}")


async def wait_not_ready(bus: Bus, name: str, fragment: str, timeout: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        st = await status(bus, name)
        ready = ready_of(st)
        return st if ready and ready["status"] == "False" and fragment in ready["message"] else None

    return await wait_for(check, timeout=timeout, message=f"{name} failing with {fragment!r}")


async def request_reconcile(bus: Bus, doc: dict[str, Any], token: str) -> None:
    doc = {
        **doc,
        "metadata": {**doc["metadata"], "annotations": {keys.RECONCILE_REQUESTED_AT: token}},
    }
    await bus.apply_object(key_of(doc["metadata"]["name"]), doc)


async def artifact_files(bus: Bus, st: dict[str, Any], tmp_path: Path) -> dict[str, bytes]:
    """Download the artifact, verify its digest, and return its files."""
    dest = tmp_path / "download.tar.gz"
    await bus.get_artifact(st["artifact"]["path"], dest)
    data = dest.read_bytes()
    assert st["artifact"]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert st["artifact"]["size"] == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


async def test_a_gitrepository_becomes_ready_with_flux_revision_and_verifiable_artifact(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    sha = git_repo.commit(
        {"apps/app.yaml": "kind: ConfigMap\n", "README.md": "hi\n"},
        branch="main",
        message="first commit",
    )
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), gitrepository("app", git_http_server.url(git_repo)))
        st = await wait_revision(bus, "app", f"main@sha1:{sha}")
        assert ready_of(st)["message"] == f"stored artifact for revision 'main@sha1:{sha}'"
        assert any(
            c["type"] == "ArtifactInStorage" and c["status"] == "True" for c in st["conditions"]
        )
        assert st["observedGeneration"] == 1
        files = await artifact_files(bus, st, tmp_path)
        assert files == {"apps/app.yaml": b"kind: ConfigMap\n", "README.md": b"hi\n"}
        events = await bus.recent_events()
        assert any(
            e.reason == "NewArtifact"
            and e.message == "stored artifact for commit 'first commit'"
            and e.reporting_controller == "source-controller"
            for e in events
        )


async def test_a_push_then_a_reconcile_request_moves_to_the_new_revision_without_refetching_when_unchanged(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    first = git_repo.commit({"a.yaml": "v: 1\n"}, branch="main")
    doc = gitrepository("app", git_http_server.url(git_repo))
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        st1 = await wait_revision(bus, "app", f"main@sha1:{first}")
        fetches = git_http_server.fetches
        # nothing changed: a reconcile lists refs but clones nothing
        await request_reconcile(bus, doc, "poll-1")
        await wait_for(lambda: _handled(bus, "app", "poll-1"), message="poll handled")
        assert git_http_server.fetches == fetches
        assert (await status(bus, "app"))["artifact"] == st1["artifact"]
        second = git_repo.commit({"a.yaml": "v: 2\n"}, branch="main", message="bump")
        await request_reconcile(bus, doc, "after-push")
        st2 = await wait_revision(bus, "app", f"main@sha1:{second}")
        assert st2["artifact"]["digest"] != st1["artifact"]["digest"]
        assert (await artifact_files(bus, st2, tmp_path))["a.yaml"] == b"v: 2\n"
        assert git_http_server.fetches == fetches + 1


async def _handled(bus: Bus, name: str, token: str) -> bool:
    return (await status(bus, name)).get("lastHandledReconcileAt") == token


async def test_wrong_credentials_keep_the_last_artifact_and_recover_when_fixed(
    bus: Bus, git_repo: GitRepo, git_http_basic_server: GitHTTPServer, tmp_path: Path
):
    server = git_http_basic_server
    sha = git_repo.commit({"a.yaml": "x: 1\n"}, branch="main")

    async def set_password(password: str) -> None:
        await bus.put_secret(
            "flux-system",
            "git-auth",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": "flux-system"},
                "data": {
                    "username": base64.b64encode(server.username.encode()).decode(),
                    "password": base64.b64encode(password.encode()).decode(),
                },
            },
        )

    await set_password(server.password)
    doc = gitrepository("app", server.url(git_repo), secretRef={"name": "git-auth"})
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        good = await wait_revision(bus, "app", f"main@sha1:{sha}")
        await set_password("not-the-password-4711")
        await request_reconcile(bus, doc, "after-the-secret-changed")
        st = await wait_not_ready(bus, "app", "git-auth")
        assert st["artifact"] == good["artifact"]  # still available to consumers
        assert any(c["type"] == "FetchFailed" and c["status"] == "True" for c in st["conditions"])
        assert "not-the-password-4711" not in str(st)
        assert all("not-the-password-4711" not in e.message for e in await bus.recent_events())
        await set_password(server.password)
        # recovery without manual action: the backoff retry picks up the fixed secret
        st = await wait_revision(bus, "app", f"main@sha1:{sha}")
        assert not any(c["type"] == "FetchFailed" for c in st["conditions"])


async def test_a_missing_secret_is_reported_by_name(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    git_repo.commit({"a.yaml": "x: 1\n"}, branch="main")
    async with source_service(bus, tmp_path):
        doc = gitrepository("app", git_http_server.url(git_repo), secretRef={"name": "nope"})
        await bus.apply_object(key_of("app"), doc)
        st = await wait_not_ready(
            bus, "app", "secret 'flux-system/nope' (spec.secretRef) not found"
        )
        assert ready_of(st)["reason"] == "AuthenticationFailed"


async def test_an_outage_backs_off_and_recovers_when_the_server_returns(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    first = git_repo.commit({"a.yaml": "x: 1\n"}, branch="main")
    doc = gitrepository("app", git_http_server.url(git_repo))
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        good = await wait_revision(bus, "app", f"main@sha1:{first}")
        git_http_server.stop()
        second = git_repo.commit({"a.yaml": "x: 2\n"}, branch="main")
        await request_reconcile(bus, doc, "during-outage")
        st = await wait_not_ready(bus, "app", "unable to reach")
        assert st["artifact"] == good["artifact"]
        git_http_server.start()
        await wait_revision(bus, "app", f"main@sha1:{second}")


async def test_a_missing_branch_says_which(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    git_repo.commit({"a.yaml": "x: 1\n"}, branch="main")
    async with source_service(bus, tmp_path):
        doc = gitrepository("app", git_http_server.url(git_repo), ref={"branch": "nope"})
        await bus.apply_object(key_of("app"), doc)
        st = await wait_not_ready(bus, "app", "nope")
        assert ready_of(st)["reason"] == "GitOperationFailed"


async def test_old_artifacts_are_garbage_collected_and_deletion_removes_all(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    doc = gitrepository("app", git_http_server.url(git_repo))
    prefix = "gitrepository/flux-system/app/"
    async with source_service(bus, tmp_path, keep=2):
        for i in range(4):
            sha = git_repo.commit({"a.yaml": f"x: {i}\n"}, branch="main")
            if i == 0:
                await bus.apply_object(key_of("app"), doc)
            else:
                await request_reconcile(bus, doc, f"push-{i}")
            st = await wait_revision(bus, "app", f"main@sha1:{sha}")
        names = await bus.list_artifacts(prefix)
        assert len(names) == 2
        assert st["artifact"]["path"] in names
        await bus.request_delete(key_of("app"))
        await wait_for(lambda: _gone(bus, key_of("app")), message="finalized")
        assert await bus.list_artifacts(prefix) == []


async def _gone(bus: Bus, key: str) -> bool:
    return await bus.get_object(key) is None


async def test_include_copies_another_repository_and_rebuilds_when_it_changes(
    bus: Bus, git_repo_factory: Any, git_http_server: GitHTTPServer, tmp_path: Path
):
    shared = git_repo_factory("shared")
    app = git_repo_factory("app")
    shared.commit({"crds/crd.yaml": "kind: CustomResourceDefinition\n"}, branch="main")
    app_sha = app.commit({"deploy.yaml": "kind: Deployment\n"}, branch="main")
    shared_doc = gitrepository("shared", git_http_server.url(shared))
    app_doc = gitrepository(
        "app",
        git_http_server.url(app),
        include=[{"repository": {"name": "shared"}, "fromPath": "crds", "toPath": "vendor/crds"}],
    )
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), app_doc)
        await wait_not_ready(bus, "app", "included GitRepository 'shared' has no artifact yet")
        await bus.apply_object(key_of("shared"), shared_doc)
        st = await wait_revision(bus, "app", f"main@sha1:{app_sha}")
        files = await artifact_files(bus, st, tmp_path)
        assert files["vendor/crds/crd.yaml"] == b"kind: CustomResourceDefinition\n"
        shared.commit({"crds/crd.yaml": "kind: CustomResourceDefinition # v2\n"}, branch="main")
        await request_reconcile(bus, shared_doc, "shared-push")

        async def rebuilt() -> dict[str, Any] | None:
            new = await status(bus, "app")
            changed = new.get("artifact", {}).get("digest") != st["artifact"]["digest"]
            return new if changed else None

        st2 = await wait_for(rebuilt, message="app rebuilt after its include changed")
        files = await artifact_files(bus, st2, tmp_path)
        assert files["vendor/crds/crd.yaml"].endswith(b"# v2\n")


async def test_changing_ignore_rules_rebuilds_the_artifact(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    sha = git_repo.commit({"keep.yaml": "a: 1\n", "drop.yaml": "b: 2\n"}, branch="main")
    doc = gitrepository("app", git_http_server.url(git_repo))
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        st = await wait_revision(bus, "app", f"main@sha1:{sha}")
        assert "drop.yaml" in await artifact_files(bus, st, tmp_path)
        await bus.apply_object(
            key_of("app"), {**doc, "spec": {**doc["spec"], "ignore": "drop.yaml\n"}}
        )

        async def observed() -> dict[str, Any] | None:
            s = await status(bus, "app")
            return s if s.get("observedIgnore") == "drop.yaml\n" else None

        st2 = await wait_for(observed, message="observedIgnore")
        assert set(await artifact_files(bus, st2, tmp_path)) == {"keep.yaml"}


def secret_doc(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "flux-system"},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


async def test_https_with_a_custom_ca_from_the_secret_becomes_ready(
    bus: Bus, git_repo: GitRepo, git_https_server: GitHTTPServer, tmp_path: Path
):
    sha = git_repo.commit({"a.yaml": "tls: true\n"}, branch="main")
    await bus.put_secret(
        "flux-system", "tls", secret_doc("tls", {"ca.crt": git_https_server.ca.ca_pem})
    )
    doc = gitrepository("app", git_https_server.url(git_repo), secretRef={"name": "tls"})
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        await wait_revision(bus, "app", f"main@sha1:{sha}")


async def test_ssh_with_identity_and_known_hosts_becomes_ready_and_unknown_host_keys_fail(
    bus: Bus, git_repo: GitRepo, git_ssh_server: Any, tmp_path: Path
):
    sha = git_repo.commit({"a.yaml": "ssh: true\n"}, branch="main")
    good = {"identity": git_ssh_server.identity, "known_hosts": git_ssh_server.known_hosts}
    await bus.put_secret("flux-system", "ssh", secret_doc("ssh", good))
    bad = {"identity": git_ssh_server.identity, "known_hosts": git_ssh_server.other_known_hosts}
    await bus.put_secret("flux-system", "ssh-wrong-host", secret_doc("ssh-wrong-host", bad))
    async with source_service(bus, tmp_path):
        doc = gitrepository("app", git_ssh_server.url(git_repo), secretRef={"name": "ssh"})
        await bus.apply_object(key_of("app"), doc)
        st = await wait_revision(bus, "app", f"main@sha1:{sha}")
        assert (await artifact_files(bus, st, tmp_path)) == {"a.yaml": b"ssh: true\n"}
        doc = gitrepository(
            "spoofed", git_ssh_server.url(git_repo), secretRef={"name": "ssh-wrong-host"}
        )
        await bus.apply_object(key_of("spoofed"), doc)
        st = await wait_not_ready(bus, "spoofed", "host key")
        assert "artifact" not in st


async def test_spec_proxy_secret_ref_sends_git_traffic_through_the_proxy(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, http_proxy: Any, tmp_path: Path
):
    sha = git_repo.commit({"a.yaml": "proxied: true\n"}, branch="main")
    proxy = {
        "address": http_proxy.address.encode(),
        "username": http_proxy.auth.username.encode(),
        "password": http_proxy.auth.password.encode(),
    }
    await bus.put_secret("flux-system", "proxy", secret_doc("proxy", proxy))
    doc = gitrepository("app", git_http_server.url(git_repo), proxySecretRef={"name": "proxy"})
    async with source_service(bus, tmp_path):
        await bus.apply_object(key_of("app"), doc)
        await wait_revision(bus, "app", f"main@sha1:{sha}")
        assert http_proxy.requests >= 2  # ref listing and fetch both went through it
