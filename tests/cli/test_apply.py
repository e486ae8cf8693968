"""`fluxbus apply`: Flux's example manifests in, the same objects out; all or nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_helpers import MANIFESTS, Cli

from fluxbus_cli.render import REDACTED
from fluxbus_common.api import Secret, dump_object, load_documents
from fluxbus_common.bus import Bus


def example_documents() -> list[dict[str, Any]]:
    """Every example manifest as the user wrote it (parsed, in file order)."""
    docs = []
    for path in sorted(MANIFESTS.rglob("*.y*ml")):
        docs.extend(dump_object(o) for o in load_documents(path.read_text(), str(path)))
    return docs


def assert_contains(expected: Any, actual: Any, where: str = "") -> None:
    """Every field of `expected` is in `actual` with the same value (extra fields allowed)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            assert_contains(value, actual[key], f"{where}.{key}")
    else:
        assert expected == actual, where


async def test_flux_examples_applied_from_a_directory_come_back_field_for_field(
    fluxbus: Cli, cli: Cli
):
    applied = await fluxbus("apply", "-f", str(MANIFESTS))
    assert applied.code == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        "imagerepository/flux-system/podinfo created",
        "imagepolicy/flux-system/podinfo created",
        "secret/flux-system/webhook-token created",
        "receiver/flux-system/github-receiver created",
        "provider/flux-system/slack-bot created",
        "alert/flux-system/slack created",
        "gitrepository/flux-system/podinfo created",
        "kustomization/flux-system/podinfo created",
    ]
    for doc in example_documents():
        name = doc["metadata"]["name"]
        got = await cli("get", doc["kind"], name, "-o", "json")
        assert got.code == 0, got.stderr
        stored = json.loads(got.stdout)
        if doc["kind"] == "Secret":
            assert stored["data"] == dict.fromkeys(doc["stringData"], REDACTED)
            continue
        assert_contains(doc, stored, doc["kind"])
        assert stored["metadata"]["generation"] == 1
        assert stored["metadata"]["uid"]
        assert stored["metadata"]["creationTimestamp"]


async def test_applying_the_same_manifests_twice_reports_unchanged(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    again = await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    assert again.code == 0
    assert again.stdout.splitlines() == [
        "gitrepository/flux-system/podinfo unchanged",
        "kustomization/flux-system/podinfo unchanged",
    ]


async def test_a_changed_spec_is_configured_and_bumps_the_generation(
    cli: Cli, bus: Bus, tmp_path: Path
):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    changed = tmp_path / "podinfo.yaml"
    changed.write_text(
        (MANIFESTS / "podinfo.yaml").read_text().replace("interval: 30m0s", "interval: 10m")
    )
    result = await cli("apply", "-f", str(changed))
    assert result.stdout.splitlines() == [
        "gitrepository/flux-system/podinfo unchanged",
        "kustomization/flux-system/podinfo configured",
    ]
    stored = await bus.get_object("kustomization.flux-system.podinfo")
    assert stored is not None
    assert stored.value["spec"]["interval"] == "10m"
    assert stored.value["metadata"]["generation"] == 2


async def test_one_invalid_document_writes_nothing_and_names_file_document_and_field(
    cli: Cli, bus: Bus, tmp_path: Path
):
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        (MANIFESTS / "podinfo.yaml").read_text().replace("interval: 30m0s", "interval: 5 minutes")
    )
    result = await cli("apply", "-f", str(batch))
    assert result.code == 1
    assert f'{batch}: document 2: spec.interval: invalid duration "5 minutes"' in result.stderr
    assert "Traceback" not in result.output
    assert await bus.list_objects() == []


async def test_an_unknown_kind_is_an_error_not_skipped(cli: Cli, bus: Bus, tmp_path: Path):
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(
        (MANIFESTS / "images.yaml").read_text()
        + "---\napiVersion: widgets.example.com/v1\nkind: Widget\n"
        "metadata: {name: redis}\nspec: {interval: 5m}\n"
    )
    result = await cli("apply", "-f", str(manifest))
    assert result.code == 1
    assert "document 3: unknown apiVersion/kind: widgets.example.com/v1 Widget" in (result.stderr)
    assert await bus.list_objects() == []


async def test_stdin_documents_without_namespace_get_the_namespace_flag(fluxbus: Cli, bus: Bus):
    manifest = "\n".join(
        line
        for line in (MANIFESTS / "images.yaml").read_text().splitlines()
        if "namespace:" not in line
    )
    result = await fluxbus("apply", "-f", "-", "-n", "apps", input=manifest)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imagerepository/apps/podinfo created",
        "imagepolicy/apps/podinfo created",
    ]
    stored = await bus.get_object("imagepolicy.apps.podinfo")
    assert stored is not None and stored.value["metadata"]["namespace"] == "apps"


async def test_secrets_and_configmaps_go_to_the_secrets_bucket(cli: Cli, bus: Bus):
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
        "data: {username: Z2l0}\nstringData: {password: s3cr3t}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars}\ndata: {env: prod}\n"
    )
    result = await cli("apply", "-f", "-", input=manifest)
    assert result.stdout.splitlines() == [
        "secret/flux-system/creds created",
        "configmap/flux-system/vars created",
    ]
    stored = await bus.get_secret("flux-system", "creds")
    assert stored is not None
    assert Secret.model_validate(stored).text() == {"username": "git", "password": "s3cr3t"}
    assert await bus.get_configmap("flux-system", "vars") is not None
    assert await bus.list_objects() == []
    again = await cli("apply", "-f", "-", input=manifest)
    assert again.stdout.splitlines() == [
        "secret/flux-system/creds unchanged",
        "configmap/flux-system/vars unchanged",
    ]


async def test_errors_about_secret_data_never_show_the_value(cli: Cli, bus: Bus):
    manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pin: 987654}\n"
    result = await cli("apply", "-f", "-", input=manifest)
    assert result.code == 1
    assert "stdin: document 1: stringData.pin: input should be a valid string" in result.stderr
    assert "987654" not in result.output
    assert await bus.list_secrets() == []


async def test_a_missing_file_is_a_clear_error(cli: Cli):
    result = await cli("apply", "-f", "/nonexistent/apps.yaml")
    assert result.code == 1
    assert "/nonexistent/apps.yaml: no such file or directory" in result.stderr


async def test_what_a_service_would_always_refuse_is_refused_at_apply_naming_the_field(
    cli: Cli, bus: Bus, tmp_path: Path
):
    """Validation at the door (issue #11): Flux's CRDs require `spec.prune` on a
    Kustomization and a GitRepository URL matching `^(http|https|ssh)://`; `fluxbus
    apply` refuses both, naming file, document and field, and writes nothing."""
    manifest = tmp_path / "door.yaml"
    manifest.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata: {name: local}\nspec: {interval: 1m, url: 'file:///srv/git/app.git'}\n"
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: app}\n"
        "spec: {interval: 5m, sourceRef: {kind: GitRepository, name: local}}\n"
    )
    result = await cli("apply", "-f", str(manifest))
    assert result.code == 1
    assert f"{manifest}: document 1: spec.url: 'file:///srv/git/app.git' is refused" in (
        result.stderr
    )
    assert f"{manifest}: document 2: spec.prune: required field is missing" in result.stderr
    assert await bus.list_objects() == []
