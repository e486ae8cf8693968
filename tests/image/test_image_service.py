"""The image-reflector service end to end in-process: the real Docker Distribution
registry, real Git servers, real nats-server. A tag pushed to the registry is
scanned, picked by policy and committed back to Git."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from image_helpers import (
    NS,
    apply,
    automation,
    basic_auth_secret,
    docker_config_secret,
    git_repository,
    image_policy,
    image_repository,
    image_service,
    ready_of,
    request_reconcile,
    wait_condition,
    wait_ready,
)

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_git.testing import GitHTTPServer, GitRepo

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web  # the web tier
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:web"}}
          args: ['--port', "8080"]
"""


async def events_of(bus: Bus, kind: str, name: str) -> list[Any]:
    return [
        e
        for e in await bus.recent_events()
        if e.involved_object.kind == kind and e.involved_object.name == name
    ]


async def test_scan_keeps_every_tag_and_the_policy_picks_the_highest_semver(
    bus: Bus, bus_settings: BusSettings, registry: Any, tmp_path: Path
):
    for tag in ("1.0.0", "1.2.0", "2.0.0-rc.1", "latest", "1.2.0.sig"):
        registry.push_tag("app", tag)
    image = f"{registry.host}/app"
    await apply(
        bus,
        image_repository("app", image, insecure=True),
        image_policy("app", "app", {"semver": {"range": ">=1.0.0"}}),
    )
    async with image_service(bus_settings, tmp_path):
        repo = await wait_ready(bus, "ImageRepository", "app")
        scan = repo["lastScanResult"]
        assert scan["tagCount"] == 4  # the cosign signature tag is excluded by default
        assert scan["latestTags"] == ["latest", "2.0.0-rc.1", "1.2.0", "1.0.0"]
        assert repo["canonicalImageName"] == image
        assert ready_of(repo)["message"].startswith("successful scan: found 4 tags with checksum ")
        policy = await wait_ready(bus, "ImagePolicy", "app")
        assert policy["latestRef"] == {"name": image, "tag": "1.2.0"}
        assert ready_of(policy)["message"] == f"Latest image tag for '{image}' resolved to 1.2.0"

        # a new tag, a reconcile request: the policy moves through the bus, and says so
        registry.push_tag("app", "1.3.0")
        await request_reconcile(bus, "ImageRepository", "app", "now")
        policy = await wait_ready(
            bus, "ImagePolicy", "app", lambda st: st["latestRef"]["tag"] == "1.3.0"
        )
        assert policy["observedPreviousRef"] == {"name": image, "tag": "1.2.0"}
        message = f"Latest image tag for '{image}' resolved to 1.3.0 (previously {image}:1.2.0)"
        assert ready_of(policy)["message"] == message
        assert message in [e.message for e in await events_of(bus, "ImagePolicy", "app")]


async def test_a_failing_registry_keeps_the_previous_tags_and_recovers(
    bus: Bus, bus_settings: BusSettings, registry: Any, tmp_path: Path
):
    registry.push_tag("app", "1.0.0")
    image = f"{registry.host}/app"
    await apply(
        bus,
        image_repository("app", image, insecure=True, timeout="3s"),
        image_policy("app", "app", {"semver": {"range": "1.x"}}),
    )
    async with image_service(bus_settings, tmp_path):
        await wait_ready(bus, "ImageRepository", "app")
        await wait_ready(bus, "ImagePolicy", "app")
        registry.stop()
        await request_reconcile(bus, "ImageRepository", "app", "outage")
        failed = await wait_condition(bus, "ImageRepository", "app", "False")
        assert ready_of(failed)["reason"] == "ReadOperationFailed"
        assert failed["lastScanResult"]["tagCount"] == 1  # the last good scan is kept
        registry.start()
        registry.push_tag("app", "1.1.0")
        recovered = await wait_ready(
            bus,
            "ImageRepository",
            "app",
            lambda st: st["lastScanResult"]["tagCount"] == 2,
            timeout=30,
        )
        assert recovered["lastScanResult"]["tagCount"] == 2
        await wait_ready(bus, "ImagePolicy", "app", lambda st: st["latestRef"]["tag"] == "1.1.0")


async def test_basic_auth_credentials_come_from_a_docker_config_secret(
    bus: Bus, bus_settings: BusSettings, registry_basic: Any, tmp_path: Path
):
    registry_basic.push_tag("private/app", "1.0.0")
    host = registry_basic.host
    await apply(
        bus,
        docker_config_secret("wrong", host, registry_basic.username, "not-the-password"),
        image_repository(
            "denied", f"{host}/private/app", insecure=True, secretRef={"name": "wrong"}
        ),
        image_repository("anonymous", f"{host}/private/app", insecure=True),
    )
    async with image_service(bus_settings, tmp_path):
        denied = await wait_condition(bus, "ImageRepository", "denied", "False")
        assert ready_of(denied)["reason"] == "AuthenticationFailed"
        assert "not-the-password" not in str(denied)
        anonymous = await wait_condition(bus, "ImageRepository", "anonymous", "False")
        assert ready_of(anonymous)["reason"] == "AuthenticationFailed"
        await apply(
            bus,
            docker_config_secret("creds", host, registry_basic.username, registry_basic.password),
            image_repository(
                "denied", f"{host}/private/app", insecure=True, secretRef={"name": "creds"}
            ),
        )
        fixed = await wait_ready(bus, "ImageRepository", "denied")
        assert fixed["lastScanResult"]["tagCount"] == 1


async def test_digest_reflection_records_the_manifest_digest(
    bus: Bus, bus_settings: BusSettings, registry: Any, tmp_path: Path
):
    digest = registry.push_tag("app", "1.0.0")
    image = f"{registry.host}/app"
    await apply(
        bus,
        image_repository("app", image, insecure=True),
        image_policy("never", "app", {"semver": {"range": "1.x"}}),
        image_policy(
            "present", "app", {"semver": {"range": "1.x"}}, digestReflectionPolicy="IfNotPresent"
        ),
        image_policy(
            "always", "app", {"semver": {"range": "1.x"}}, digestReflectionPolicy="Always"
        ),
    )
    async with image_service(bus_settings, tmp_path):
        never = await wait_ready(bus, "ImagePolicy", "never")
        assert "digest" not in never["latestRef"]
        present = await wait_ready(bus, "ImagePolicy", "present")
        assert present["latestRef"]["digest"] == digest
        assert ready_of(present)["message"].endswith(f"resolved to 1.0.0 with digest {digest}")
        stalled = await wait_condition(bus, "ImagePolicy", "always", "False")
        assert ready_of(stalled)["reason"] == "IntervalNotConfigured"


async def test_automation_commits_the_new_tag_and_changes_nothing_else(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    tmp_path: Path,
):
    image = f"{registry.host}/web"
    original = DEPLOYMENT.format(image=image)
    untouched = "# no marker here\nimage: other:1.0.0\n"
    git_repo.commit(
        {"apps/web.yaml": original, "apps/other.yaml": untouched}, branch="main", message="init"
    )
    start = git_repo.head("main")
    registry.push_tag("web", "1.0.0")
    registry.push_tag("web", "1.1.0")
    server = git_http_basic_server
    await apply(
        bus,
        basic_auth_secret("git-auth", server.username, server.password),
        git_repository("fleet", server.url(git_repo), secretRef={"name": "git-auth"}),
        image_repository("web", image, insecure=True),
        image_policy("web", "web", {"semver": {"range": "1.x"}}),
        automation("fleet", "fleet", push={"branch": "main"}),
    )
    async with image_service(bus_settings, tmp_path / "a"):
        st = await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: s.get("lastPushCommit"), timeout=30
        )
    head = git_repo.head("main")
    assert head != start and st["lastPushCommit"] == head
    assert git_repo.show("apps/web.yaml", head) == original.replace(
        f"{image}:1.0.0", f"{image}:1.1.0"
    )
    assert git_repo.show("apps/other.yaml", head) == untouched
    assert git_repo.log(head)[0].message.rstrip("\n") == "Update from image update automation"
    assert st["observedPolicies"] == {"web": {"name": image, "tag": "1.1.0"}}
    pushed = [
        e.message
        for e in await events_of(bus, "ImageUpdateAutomation", "fleet")
        if e.message.startswith("pushed commit")
    ]
    assert [m.rstrip("\n") for m in pushed] == [
        f"pushed commit '{head[:7]}' to branch 'main'\nUpdate from image update automation"
    ]

    # a restart (a new replica) finds nothing to do: no second commit
    await request_reconcile(bus, "ImageUpdateAutomation", "fleet", "again")
    async with image_service(bus_settings, tmp_path / "b", instance="second"):
        await wait_ready(
            bus,
            "ImageUpdateAutomation",
            "fleet",
            lambda s: s.get("lastHandledReconcileAt") == "again",
            timeout=30,
        )
    assert git_repo.head("main") == head


async def test_automation_pushes_to_another_branch_with_a_templated_message(
    bus: Bus,
    bus_settings: BusSettings,
    registry: Any,
    git_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    tmp_path: Path,
):
    image = f"{registry.host}/web"
    git_repo.commit({"web.yaml": DEPLOYMENT.format(image=image)}, branch="main", message="init")
    main = git_repo.head("main")
    registry.push_tag("web", "1.0.1")
    # the example of Flux's ImageUpdateAutomation spec ("Message template"), verbatim
    template = (
        "Automated image update\n"
        "\n"
        "Automation name: {{ .AutomationObject }}\n"
        "\n"
        "Files:\n"
        "{{ range $filename, $_ := .Changed.FileChanges -}}\n"
        "- {{ $filename }}\n"
        "{{ end -}}\n"
        "\n"
        "Objects:\n"
        "{{ range $resource, $changes := .Changed.Objects -}}\n"
        "- {{ $resource.Kind }} {{ $resource.Name }}\n"
        "  Changes:\n"
        "{{- range $_, $change := $changes }}\n"
        "    - {{ $change.OldValue }} -> {{ $change.NewValue }}\n"
        "{{ end -}}\n"
        "{{ end -}}\n"
    )
    server = git_http_basic_server
    await apply(
        bus,
        basic_auth_secret("git-auth", server.username, server.password),
        git_repository("fleet", server.url(git_repo), secretRef={"name": "git-auth"}),
        image_repository("web", image, insecure=True),
        image_policy("web", "web", {"semver": {"range": "1.x"}}),
        automation(
            "fleet",
            "fleet",
            checkout={"ref": {"branch": "main"}},
            push={"branch": "image-updates"},
            commit={
                "author": {"name": "fluxbot", "email": "fluxbot@example.com"},
                "messageTemplate": template,
            },
        ),
    )
    async with image_service(bus_settings, tmp_path):
        st = await wait_ready(
            bus, "ImageUpdateAutomation", "fleet", lambda s: s.get("lastPushCommit"), timeout=30
        )
    assert git_repo.head("main") == main  # the checkout branch is untouched
    pushed = git_repo.head("image-updates")
    assert st["lastPushCommit"] == pushed
    # Go's trim markers eat the blank line before "Objects:" and the last newline
    assert git_repo.log(pushed)[0].message.rstrip("\n") == (
        "Automated image update\n\nAutomation name: flux-system/fleet\n\n"
        "Files:\n- web.yaml\nObjects:\n- Deployment web\n"
        f"  Changes:\n    - {image}:1.0.0 -> {image}:1.0.1"
    )
    assert NS  # the automation's namespace is the policies' namespace
