"""Flux's own manifests load unchanged, round-trip exactly, get Flux's defaults
and are rejected with messages that name the document and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxbus_common.api import (
    KINDS,
    Alert,
    ConfigMap,
    DependencyReference,
    GitRepository,
    GitRepositorySpec,
    ImagePolicy,
    ImageRepository,
    ImageUpdateAutomation,
    InvalidObject,
    Kustomization,
    KustomizationSpec,
    ObjectMeta,
    Provider,
    Receiver,
    Secret,
    ToolkitObject,
    UnknownKind,
    dump_object,
    kind_for,
    load_documents,
    parse_object,
    resolve_kind,
)
from fluxbus_common.conditions import Condition

MANIFESTS = Path(__file__).parent / "manifests"
MANIFEST_FILES = sorted(MANIFESTS.glob("*.yaml"))


def raw_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def git_repository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {"interval": "5m", "url": "https://github.com/stefanprodan/podinfo", **spec},
    }


def kustomization(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
            **spec,
        },
    }


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=[p.stem for p in MANIFEST_FILES])
def test_every_manifest_round_trips_exactly(path: Path) -> None:
    objects = load_documents(path.read_text(), path.name)

    assert [dump_object(obj) for obj in objects] == raw_documents(path)


def test_the_manifests_cover_every_kind_and_version() -> None:
    seen = {
        (obj.api_version, obj.kind)
        for path in MANIFEST_FILES
        for obj in load_documents(path.read_text(), path.name)
    }

    assert seen == {(v, info.kind) for info in KINDS for v in info.api_versions}


def test_each_manifest_becomes_its_kinds_model() -> None:
    text = "\n---\n".join(p.read_text() for p in MANIFEST_FILES)
    kinds = {type(obj) for obj in load_documents(text, "all.yaml")}

    assert kinds == {info.model for info in KINDS}


def test_a_status_written_by_flux_round_trips_too() -> None:
    doc = kustomization()
    doc["status"] = {
        "observedGeneration": 3,
        "lastHandledReconcileAt": "2024-05-01T10:00:00Z",
        "lastAppliedRevision": "master@sha1:450796ddb2ab6724ee1cc32a4be56da032d1cca0",
        "lastAttemptedRevision": "master@sha1:450796ddb2ab6724ee1cc32a4be56da032d1cca0",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "ReconciliationSucceeded",
                "message": "Applied revision: master@sha1:450796dd",
                "lastTransitionTime": "2023-03-07T11:14:41Z",
                "observedGeneration": 3,
            }
        ],
        "inventory": {"entries": [{"id": "apps_podinfo_apps_Deployment", "v": "v1"}]},
        "history": [
            {
                "digest": "sha256:2f1a",
                "firstReconciled": "2024-05-01T10:00:00Z",
                "lastReconciled": "2024-05-01T11:00:00Z",
                "lastReconciledDuration": "2.5s",
                "lastReconciledStatus": "ReconciliationSucceeded",
                "totalReconciliations": 5,
                "metadata": {"revision": "master@sha1:450796dd"},
            }
        ],
        "someFutureField": {"kept": True},
    }

    obj = parse_object(doc)

    assert isinstance(obj, Kustomization)
    assert obj.status.inventory is not None
    assert obj.status.inventory.entries[0].id == "apps_podinfo_apps_Deployment"
    assert dump_object(obj) == doc
    assert "status" not in dump_object(obj, include_status=False)


def test_an_artifact_status_round_trips() -> None:
    doc = git_repository()
    doc["status"] = {
        "observedGeneration": 1,
        "artifact": {
            "digest": "sha256:95e386f421272710c4cedbbd8607dbbaa019d500e7a5a0b6720bc7bebefc7bf2",
            "lastUpdateTime": "2022-02-14T11:23:36Z",
            "path": "gitrepository/default/podinfo/132f4e71.tar.gz",
            "revision": "master@sha1:132f4e719209eb10b9485302f8593fc0e680f4fc",
            "size": 91318,
            "url": "http://source-controller.flux-system.svc/gitrepository/default/podinfo/132f4e71.tar.gz",
        },
        "conditions": [],
    }

    obj = parse_object(doc)

    assert isinstance(obj, GitRepository)
    assert obj.status.artifact is not None and obj.status.artifact.size == 91318
    assert dump_object(obj) == doc


def test_snake_case_input_is_accepted_and_dumped_as_camel_case() -> None:
    doc = kustomization()
    doc["spec"]["retry_interval"] = "1m"
    doc["spec"]["source_ref"] = doc["spec"].pop("sourceRef")

    dumped = dump_object(parse_object(doc))

    assert dumped["spec"]["retryInterval"] == "1m"
    assert dumped["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "podinfo"}


def test_an_object_built_in_code_dumps_only_what_was_given() -> None:
    obj = Kustomization(
        metadata=ObjectMeta(name="apps", namespace="flux-system"),
        spec=KustomizationSpec(
            interval="1m",
            prune=True,  # required, as in Flux v1
            source_ref={"kind": "GitRepository", "name": "flux-system"},
        ),
    )

    assert dump_object(obj) == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {
            "interval": "1m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
    }


def test_in_place_edits_show_up_in_the_dump() -> None:
    obj = parse_object(kustomization())
    assert isinstance(obj, Kustomization)

    obj.metadata.annotations["reconcile.fluxcd.io/requestedAt"] = "now"
    obj.spec.depends_on.append(DependencyReference(name="infra"))
    obj.status.conditions.append(
        Condition(type="Ready", status="True", reason="Succeeded", lastTransitionTime="t0")
    )
    obj.status.observed_generation = 2
    dumped = dump_object(obj)

    assert dumped["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": "now"}
    assert dumped["spec"]["dependsOn"] == [{"name": "infra"}]
    assert dumped["status"] == {
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "",
                "lastTransitionTime": "t0",
            }
        ],
    }


def test_dumps_are_json_and_deterministic() -> None:
    path = MANIFESTS / "podinfo.yaml"
    first = [dump_object(o) for o in load_documents(path.read_text(), path.name)]
    second = [dump_object(o) for o in load_documents(path.read_text(), path.name)]

    assert first == second
    assert [list(d) for d in first] == [list(d) for d in second]
    assert list(first[1]) == ["apiVersion", "kind", "metadata", "spec"]


# -- status and keys -----------------------------------------------------------------------------


TOOLKIT_KINDS = [k for k in KINDS if issubclass(k.model, ToolkitObject)]


@pytest.mark.parametrize("info", TOOLKIT_KINDS, ids=[k.kind for k in TOOLKIT_KINDS])
def test_every_toolkit_kind_starts_with_an_empty_status(info: Any) -> None:
    path_docs = [
        d
        for p in MANIFEST_FILES
        for d in raw_documents(p)
        if d["kind"] == info.kind and d["apiVersion"] == info.api_version
    ]

    obj = parse_object(path_docs[0])

    assert isinstance(obj, ToolkitObject)
    assert obj.status.observed_generation == 0
    assert obj.status.conditions == []
    assert obj.status.last_handled_reconcile_at is None
    assert "status" not in dump_object(obj)


def test_the_key_is_kind_namespace_name() -> None:
    obj = parse_object(git_repository())

    assert obj.key == "gitrepository.flux-system.podinfo"
    assert obj.store_key == obj.key


def test_a_missing_namespace_reads_as_default_but_is_not_invented_in_the_dump() -> None:
    doc = git_repository()
    del doc["metadata"]["namespace"]

    obj = parse_object(doc)

    assert obj.key == "gitrepository.default.podinfo"
    assert "namespace" not in dump_object(obj)["metadata"]


def test_secrets_and_configmaps_live_under_secret_keys() -> None:
    path = MANIFESTS / "secrets.yaml"
    secret, configmap = load_documents(path.read_text(), path.name)

    assert isinstance(secret, Secret) and isinstance(configmap, ConfigMap)
    assert secret.store_key == "flux-system.podinfo-auth"
    assert configmap.store_key == "configmap.flux-system.cluster-vars"
    assert resolve_kind("secret").store == resolve_kind("cm").store == "secrets"


def test_a_secret_decodes_data_and_string_data_with_string_data_winning() -> None:
    secret = parse_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth"},
            "data": {"username": "Z2l0", "password": "b2xk"},
            "stringData": {"password": "new"},
        }
    )

    assert isinstance(secret, Secret)
    assert secret.decoded() == {"username": b"git", "password": b"new"}
    assert secret.text() == {"username": "git", "password": "new"}


def test_metadata_fields_flux_does_not_model_are_kept() -> None:
    doc = git_repository()
    doc["metadata"].update(
        {
            "uid": "5b5e",
            "resourceVersion": "42",
            "generation": 7,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "finalizers": ["finalizers.fluxcd.io"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "x", "uid": "1"}],
            "selfLink": "/legacy",
        }
    )

    obj = parse_object(doc)

    assert obj.metadata.generation == 7
    assert dump_object(obj) == doc


# -- defaults ------------------------------------------------------------------------------------


def test_a_git_repository_without_ref_checks_out_master_with_a_60s_timeout() -> None:
    spec = GitRepositorySpec.model_validate(git_repository()["spec"])

    assert spec.effective_ref.branch == "master"
    assert spec.timeout_seconds == 60.0
    assert spec.interval_seconds == 300.0
    assert spec.ref is None


def test_an_empty_git_ref_also_means_master() -> None:
    spec = GitRepositorySpec.model_validate(git_repository(ref={})["spec"])

    assert spec.effective_ref.branch == "master"
    assert dump_object(parse_object(git_repository(ref={})))["spec"]["ref"] == {}


def test_an_explicit_git_ref_and_timeout_win() -> None:
    spec = GitRepositorySpec.model_validate(
        git_repository(ref={"tag": "6.5.0"}, timeout="1m30s")["spec"]
    )

    assert spec.effective_ref.tag == "6.5.0"
    assert spec.effective_ref.branch is None
    assert spec.timeout_seconds == 90.0


@pytest.mark.parametrize(
    ("spec", "timeout", "retry"),
    [
        pytest.param({}, 570.0, 600.0, id="timeout-is-interval-minus-30s"),
        pytest.param({"interval": "45s"}, 30.0, 45.0, id="never-below-30s"),
        pytest.param({"timeout": "3m", "retryInterval": "2m"}, 180.0, 120.0, id="explicit"),
        pytest.param({"timeout": "10s"}, 30.0, 600.0, id="explicit-timeout-floored-like-flux"),
    ],
)
def test_kustomization_timeout_and_retry_follow_flux(
    spec: dict[str, Any], timeout: float, retry: float
) -> None:
    obj = parse_object(kustomization(**spec))

    assert isinstance(obj, Kustomization)
    assert obj.spec.timeout_seconds == timeout
    assert obj.spec.retry_interval_seconds == retry
    assert obj.spec.effective_deletion_policy == "MirrorPrune"
    assert obj.spec.suspend is False


def test_image_kinds_get_flux_defaults() -> None:
    repo, policy, update = (
        parse_object(d)
        for d in (
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageRepository",
                "metadata": {"name": "podinfo"},
                "spec": {"image": "ghcr.io/stefanprodan/podinfo", "interval": "5m"},
            },
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": "podinfo"},
                "spec": {
                    "imageRepositoryRef": {"name": "podinfo"},
                    "policy": {"semver": {"range": "5.x"}},
                    "digestReflectionPolicy": "Always",
                },
            },
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImageUpdateAutomation",
                "metadata": {"name": "auto"},
                "spec": {"interval": "30m", "sourceRef": {"name": "flux-system"}},
            },
        )
    )

    assert isinstance(repo, ImageRepository)
    assert repo.spec.timeout_seconds == 300.0
    assert repo.spec.effective_exclusion_list == [r"^.*\.sig$"]
    assert repo.spec.effective_provider == "generic"
    assert isinstance(policy, ImagePolicy)
    assert policy.spec.interval_seconds == 600.0
    assert isinstance(update, ImageUpdateAutomation)
    assert update.spec.source_ref.kind == "GitRepository"
    assert update.spec.effective_update.strategy == "Setters"
    assert update.spec.interval_seconds == 1800.0


def test_notification_kinds_get_flux_defaults() -> None:
    path = MANIFESTS / "notification.yaml"
    slack, alert, webhook, _ = load_documents(path.read_text(), path.name)
    receiver = load_documents((MANIFESTS / "receiver.yaml").read_text(), "receiver.yaml")[1]

    assert isinstance(slack, Provider) and isinstance(webhook, Provider)
    assert slack.spec.timeout_seconds == 15.0
    assert webhook.spec.timeout_seconds == 10.0
    assert isinstance(alert, Alert)
    assert alert.spec.effective_event_severity == "error"
    assert isinstance(receiver, Receiver)
    assert receiver.spec.interval_seconds == 300.0
    assert receiver.spec.model_copy(update={"interval": None}).interval_seconds == 600.0


# -- validation errors ---------------------------------------------------------------------------


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(
            _set(kustomization(), "spec.interval", "5 minutes"),
            'spec.interval: invalid duration "5 minutes"',
            id="bad-duration",
        ),
        pytest.param(
            _set(kustomization(), "spec.timeout", "-1m"),
            'spec.timeout: invalid duration "-1m": must not be negative',
            id="negative-duration",
        ),
        pytest.param(
            _set(kustomization(), "spec.prunee", True),
            "spec.prunee: unknown field",
            id="unknown-spec-field",
        ),
        pytest.param(
            _set(kustomization(), "spec.dependsOn", [{"namespace": "x"}]),
            "spec.dependsOn[0].name: required field is missing",
            id="missing-field-in-list",
        ),
        pytest.param(
            _set(kustomization(), "metadata.name", ...),
            "metadata.name: required field is missing",
            id="missing-name",
        ),
        pytest.param(
            _set(kustomization(), "metadata.name", "Pod_Info"),
            'metadata.name: invalid name "Pod_Info": must be a lowercase RFC 1123 subdomain '
            "(a-z, 0-9, '-', '.', at most 253 characters)",
            id="invalid-name",
        ),
        pytest.param(
            _set(kustomization(), "metadata", ...),
            "metadata: required field is missing",
            id="missing-metadata",
        ),
        pytest.param(
            _set(kustomization(), "kind", "Kustomisation"),
            "unknown apiVersion/kind: kustomize.toolkit.fluxcd.io/v1 Kustomisation",
            id="unknown-kind",
        ),
        pytest.param(
            _set(kustomization(), "apiVersion", "kustomize.toolkit.fluxcd.io/v1beta2"),
            "unknown apiVersion/kind: kustomize.toolkit.fluxcd.io/v1beta2 Kustomization",
            id="bad-api-version",
        ),
        pytest.param(
            _set(kustomization(), "apiVersion", ...),
            "apiVersion: required field is missing",
            id="missing-api-version",
        ),
        pytest.param(
            _set(kustomization(), "spec.prune", "maybe"),
            'spec.prune: input should be a valid boolean, unable to interpret input (got "maybe")',
            id="wrong-type",
        ),
        pytest.param(
            _set(kustomization(), "spec.interval", 5),
            "spec.interval: input should be a valid string (got 5)",
            id="number-instead-of-duration",
        ),
        pytest.param(
            _set(kustomization(), "spec.sourceRef", {"kind": "Foo", "name": "x"}),
            "spec.sourceRef.kind: input should be 'GitRepository', 'OCIRepository', 'Bucket' "
            "or 'ExternalArtifact' (got \"Foo\")",
            id="value-outside-enum",
        ),
        pytest.param(
            _set(kustomization(), "metadata.labels", {"app.kubernetes.io/name": 1}),
            'metadata.labels["app.kubernetes.io/name"]: input should be a valid string (got 1)',
            id="label-key-with-dots",
        ),
        pytest.param(
            _set(
                _set(kustomization(), "spec.interval", "soon"),
                "spec.retryInterval",
                "later",
            ),
            'spec.interval: invalid duration "soon"; spec.retryInterval: invalid duration "later"',
            id="several-errors",
        ),
        pytest.param(
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": "p"},
                "spec": {
                    "imageRepositoryRef": {"name": "r"},
                    "policy": {"semver": {"range": "1.x"}, "numerical": {}},
                },
            },
            "spec.policy: exactly one of semver, alphabetical or numerical must be set",
            id="two-image-policies",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "%%"}},
            'data: value of key "k" is not valid base64',
            id="secret-data-not-base64",
        ),
        pytest.param(["not", "a", "mapping"], "expected an object (mapping), got list", id="list"),
        # Validation at the door (issue #11): what Flux's CRDs refuse is refused here.
        pytest.param(
            _set(kustomization(), "spec.prune", ...),
            "spec.prune: required field is missing",
            id="prune-is-required-as-in-flux-v1",
        ),
        pytest.param(
            git_repository(url="file:///srv/git/app.git"),
            "spec.url: 'file:///srv/git/app.git' is refused: a GitRepository URL must start "
            "with http://, https:// or ssh:// (file:// URLs, local paths and the scp-like "
            "'git@host:path' form are never fetched)",
            id="file-url-refused-as-by-the-crd-pattern",
        ),
        pytest.param(
            git_repository(url="ftp://user:pw@example.com/app.git"),
            "spec.url: 'ftp://***@example.com/app.git' is refused: a GitRepository URL must "
            "start with http://, https:// or ssh:// (file:// URLs, local paths and the "
            "scp-like 'git@host:path' form are never fetched)",
            id="refused-url-never-shows-credentials",
        ),
        pytest.param(
            _set(kustomization(), "spec.postBuild", {"substituteStrategy": "Sometimes"}),
            "spec.postBuild.substituteStrategy: input should be 'WithVariables' or 'Always' "
            '(got "Sometimes")',
            id="substitute-strategy-enum",
        ),
    ],
)
def test_invalid_objects_are_rejected_with_the_field_path(doc: Any, message: str) -> None:
    with pytest.raises(InvalidObject) as err:
        parse_object(doc)

    assert str(err.value) == message


def test_load_documents_names_the_source_and_document_number() -> None:
    text = (
        yaml.safe_dump(git_repository())
        + "---\n"
        + yaml.safe_dump(_set(kustomization(), "spec.interval", "5 minutes"))
    )

    with pytest.raises(InvalidObject) as err:
        load_documents(text, "apps.yaml")

    assert str(err.value) == 'apps.yaml: document 2: spec.interval: invalid duration "5 minutes"'


def test_a_yaml_syntax_error_names_its_document() -> None:
    text = yaml.safe_dump(git_repository()) + "---\n---\nspec: [unclosed\n"

    with pytest.raises(InvalidObject) as err:
        load_documents(text, "broken.yaml")

    assert str(err.value).startswith("broken.yaml: document 3: invalid YAML: line ")


def test_an_unknown_kind_in_a_file_names_its_document() -> None:
    text = yaml.safe_dump(git_repository()) + "---\napiVersion: foo/v1\nkind: Bar\n"

    with pytest.raises(InvalidObject) as err:
        load_documents(text, "mixed.yaml")

    assert str(err.value) == "mixed.yaml: document 2: unknown apiVersion/kind: foo/v1 Bar"


def test_errors_in_several_documents_are_all_reported() -> None:
    text = (
        yaml.safe_dump(_set(git_repository(), "spec.interval", "x"))
        + "---\n"
        + yaml.safe_dump(_set(kustomization(), "spec.wat", 1))
    )

    with pytest.raises(InvalidObject) as err:
        load_documents(text, "f.yaml")

    assert str(err.value) == (
        'f.yaml: document 1: spec.interval: invalid duration "x"; '
        "f.yaml: document 2: spec.wat: unknown field"
    )


def test_duplicate_keys_are_rejected_like_kubectl_does() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nkind: Secret\n"

    with pytest.raises(
        InvalidObject, match=r'^x.yaml: document 1: invalid YAML: .*duplicate key "kind"'
    ):
        load_documents(text, "x.yaml")


def test_empty_documents_are_skipped_and_lists_expand() -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [git_repository(), kustomization()]}
    text = "---\n# only a comment\n---\n" + yaml.safe_dump(listing) + "---\n"

    objects = load_documents(text, "list.yaml")

    assert [o.kind for o in objects] == ["GitRepository", "Kustomization"]


def test_an_error_inside_a_list_names_the_item() -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [git_repository(), _set(kustomization(), "spec.interval", "1 day")],
    }

    with pytest.raises(InvalidObject) as err:
        load_documents(yaml.safe_dump(listing), "list.yaml")

    assert (
        str(err.value) == 'list.yaml: document 1: items[1].spec.interval: invalid duration "1 day"'
    )


def test_timestamps_stay_strings_as_in_kubernetes_yaml() -> None:
    text = yaml.safe_dump(git_repository()).replace(
        "metadata:\n",
        "metadata:\n  annotations:\n    reconcile.fluxcd.io/requestedAt: 2024-05-01T10:00:00Z\n",
    )

    (obj,) = load_documents(text, "ts.yaml")

    assert obj.metadata.annotations["reconcile.fluxcd.io/requestedAt"] == "2024-05-01T10:00:00Z"


# -- kinds ---------------------------------------------------------------------------------------

ALIASES = {
    "GitRepository": ["gitrepositories", "gitrepository", "gitrepo", "GitRepository"],
    "Kustomization": ["kustomizations", "kustomization", "ks", "Kustomization", "KS"],
    "ImageRepository": ["imagerepositories", "imagerepository", "imagerepo", "ImageRepository"],
    "ImagePolicy": ["imagepolicies", "imagepolicy", "imagepol", "ImagePolicy"],
    "ImageUpdateAutomation": [
        "imageupdateautomations",
        "imageupdateautomation",
        "imageupdate",
        "ImageUpdateAutomation",
    ],
    "Provider": ["providers", "provider", "Provider"],
    "Alert": ["alerts", "alert", "Alert"],
    "Receiver": ["receivers", "receiver", "Receiver"],
    "Secret": ["secrets", "secret", "Secret"],
    "ConfigMap": ["configmaps", "configmap", "cm", "ConfigMap"],
}


@pytest.mark.parametrize(
    ("alias", "kind"),
    [pytest.param(a, k, id=a) for k, aliases in ALIASES.items() for a in aliases],
)
def test_every_alias_resolves_to_its_kind(alias: str, kind: str) -> None:
    assert resolve_kind(alias).kind == kind


def test_group_qualified_names_resolve_like_kubectl() -> None:
    assert resolve_kind("kustomizations.kustomize.toolkit.fluxcd.io").kind == "Kustomization"
    with pytest.raises(UnknownKind):
        resolve_kind("kustomizations.source.toolkit.fluxcd.io")


def test_an_unknown_kind_name_is_refused() -> None:
    with pytest.raises(UnknownKind, match=r"^unknown kind: ocirepositories$"):
        resolve_kind("ocirepositories")


def test_kind_for_accepts_only_the_listed_api_versions() -> None:
    assert kind_for("image.toolkit.fluxcd.io/v1beta2", "ImagePolicy").kind == "ImagePolicy"
    assert kind_for("v1", "Secret").store == "secrets"
    with pytest.raises(UnknownKind) as err:
        kind_for("foo/v1", "Bar")
    assert str(err.value) == "unknown apiVersion/kind: foo/v1 Bar"


def test_kind_infos_list_the_preferred_version_first() -> None:
    info = resolve_kind("imagerepo")

    assert info.api_version == "image.toolkit.fluxcd.io/v1"
    assert info.api_versions == ("image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2")
    assert info.plural == "imagerepositories" and info.singular == "imagerepository"
    assert resolve_kind("cm").api_version == "v1"


def test_current_kustomization_api_fields_are_accepted() -> None:
    """kustomize-controller v1.9 api/v1: `spec.ignore`, `spec.ignoreMissingComponents`
    and `spec.postBuild.substituteStrategy` are fields of the Kustomization spec."""
    doc = kustomization(
        ignore=[{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}],
        ignoreMissingComponents=True,
        components=["../components/extra"],
        postBuild={"substituteStrategy": "Always"},
    )
    obj = parse_object(doc)
    assert dump_object(obj) == doc
