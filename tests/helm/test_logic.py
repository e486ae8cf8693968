"""The helm service's pure rules: values composition with Helm's `--set`
semantics, Flux's config digest, history operations and the release state
machine's choice of action."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from fluxbus_common.api.helm import HelmRelease
from fluxbus_helm.logic import history as hist
from fluxbus_helm.logic import state as sm
from fluxbus_helm.logic.drift import drift_line, hand_back, manifest_objects
from fluxbus_helm.logic.storage import mark_failed
from fluxbus_helm.logic.values import (
    ValuesFormatError,
    config_digest,
    merge_maps,
    read_values,
    set_path,
)


@pytest.mark.parametrize(
    ("path", "raw", "expected"),
    [
        pytest.param("a.b", "1", {"a": {"b": 1}}, id="integer"),
        pytest.param("a", "true", {"a": True}, id="boolean"),
        pytest.param("a", "null", {"a": None}, id="null"),
        pytest.param("a", "007", {"a": "007"}, id="leading-zero-stays-string"),
        pytest.param("a", '"42"', {"a": "42"}, id="quoted-stays-string"),
        pytest.param("a", "{x,y}", {"a": ["x", "y"]}, id="list"),
        pytest.param("list[1]", "z", {"list": [None, "z"]}, id="index"),
        pytest.param(r"dotted\.key", "v", {"dotted.key": "v"}, id="escaped-dot"),
        pytest.param("a", "multi\nline: text", {"a": "multi\nline: text"}, id="text"),
    ],
)
def test_target_path_follows_helm_set(path: str, raw: str, expected: dict[str, Any]):
    values: dict[str, Any] = {}
    set_path(values, path, raw)
    assert values == expected


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        pytest.param("a", "x,y", id="unescaped-comma"),
        pytest.param("a..b", "1", id="empty-segment"),
        pytest.param("a[99999999]", "1", id="huge-index"),
    ],
)
def test_target_path_refuses_what_helm_refuses(path: str, raw: str):
    with pytest.raises(ValuesFormatError):
        set_path({}, path, raw)


def test_later_values_win_and_maps_merge():
    base = {"image": {"repo": "a", "tag": "1"}, "list": [1, 2]}
    assert merge_maps(base, {"image": {"tag": "2"}, "list": [3]}) == {
        "image": {"repo": "a", "tag": "2"},
        "list": [3],
    }
    assert read_values("") == {}
    with pytest.raises(ValuesFormatError):
        read_values("- not\n- a map\n")


def test_config_digest_is_the_sha256_of_sorted_yaml_and_of_nothing_when_empty():
    assert config_digest({}) == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert config_digest({"b": 1, "a": {"c": "x"}}) == (
        "sha256:" + hashlib.sha256(b"a:\n  c: x\nb: 1\n").hexdigest()
    )


@dataclass(frozen=True)
class Rls:
    name: str = "web"
    namespace: str = "default"
    revision: int = 1
    status: str = "deployed"
    chart_name: str = "demo"
    chart_version: str = "0.1.0"
    app_version: str | None = "1.0"
    manifest: str = ""
    first_deployed: str = "t0"
    last_deployed: str = "t1"
    deleted: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


def _hr(status: dict[str, Any] | None = None, **spec: Any) -> HelmRelease:
    return HelmRelease.model_validate(
        {
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"interval": "1m", "chartRef": {"kind": "HelmChart", "name": "c"}, **spec},
            "status": status or {},
        }
    )


DESIRED = sm.Desired("demo", "0.1.0", config_digest({}))


def _observed(*releases: Rls, **status: Any) -> dict[str, Any]:
    snaps = [hist.snapshot(r).model_dump(by_alias=True, exclude_none=True) for r in releases]
    return {"history": snaps, **status}


@pytest.mark.parametrize(
    ("status", "last", "desired", "expected"),
    [
        pytest.param(None, None, DESIRED, sm.ReleaseStatus.ABSENT, id="nothing-stored"),
        pytest.param(None, Rls(), DESIRED, sm.ReleaseStatus.UNMANAGED, id="not-ours"),
        pytest.param(_observed(Rls()), Rls(), DESIRED, sm.ReleaseStatus.IN_SYNC, id="in-sync"),
        pytest.param(
            _observed(Rls()),
            Rls(),
            sm.Desired("demo", "0.2.0", DESIRED.config_digest),
            sm.ReleaseStatus.OUT_OF_SYNC,
            id="new-chart",
        ),
        pytest.param(
            _observed(Rls()),
            Rls(),
            sm.Desired("demo", "0.1.0", config_digest({"a": 1})),
            sm.ReleaseStatus.OUT_OF_SYNC,
            id="new-values",
        ),
        pytest.param(
            _observed(Rls(status="failed")),
            Rls(status="failed"),
            DESIRED,
            sm.ReleaseStatus.FAILED,
            id="failed",
        ),
        pytest.param(
            None, Rls(status="pending-upgrade"), DESIRED, sm.ReleaseStatus.LOCKED, id="pending"
        ),
        pytest.param(
            _observed(Rls()),
            Rls(last_deployed="later"),
            DESIRED,
            sm.ReleaseStatus.UNMANAGED,
            id="changed-behind-our-back",
        ),
    ],
)
def test_release_state_compares_helm_storage_with_the_helmrelease(
    status: dict[str, Any] | None, last: Rls | None, desired: sm.Desired, expected: sm.ReleaseStatus
):
    assert sm.determine_state(_hr(status), last, desired).status == expected


def test_a_failed_upgrade_is_rolled_back_only_while_retries_or_last_failure_allow():
    v1, v2 = Rls(revision=1, status="superseded"), Rls(revision=2, status="failed")
    failed = sm.ReleaseState(sm.ReleaseStatus.FAILED)
    status = _observed(v2, v1, lastAttemptedReleaseAction="upgrade", upgradeFailures=1)

    with pytest.raises(sm.ExceededMaxRetries):
        sm.next_action(_hr(status), failed, [v1, v2])
    retries = {"remediation": {"retries": 1}}
    assert sm.next_action(_hr(status, upgrade=retries), failed, [v1, v2]) == sm.Action.ROLLBACK
    uninstall = {"remediation": {"retries": 1, "strategy": "uninstall"}}
    assert sm.next_action(_hr(status, upgrade=uninstall), failed, [v1, v2]) == sm.Action.UNINSTALL
    with pytest.raises(sm.MissingRollbackTarget):
        sm.next_action(
            _hr(
                _observed(v2, lastAttemptedReleaseAction="upgrade", upgradeFailures=1),
                upgrade=retries,
            ),
            failed,
            [v2],
        )


def test_history_keeps_down_to_the_previous_good_release():
    snaps = [
        hist.snapshot(Rls(revision=n, status=s))
        for n, s in [(4, "failed"), (3, "failed"), (2, "superseded"), (1, "superseded")]
    ]
    assert [s.version for s in hist.truncate(snaps, ignore_tests=False)] == [4, 3, 2]
    prev = hist.previous(snaps, ignore_tests=False)
    assert prev is not None and prev.version == 2


def test_corrected_fields_are_handed_back_to_helms_apply_entry():
    managed = [
        {"manager": "helm", "operation": "Apply", "fieldsV1": {"f:data": {"f:replicas": {}}}},
        {"manager": "fluxbus", "operation": "Apply", "fieldsV1": {"f:data": {"f:mode": {}}}},
        {"manager": "kube-controller", "operation": "Update", "fieldsV1": {"f:status": {}}},
    ]
    handed = hand_back(managed, "fluxbus")
    assert handed is not None
    assert [e["manager"] for e in handed] == ["kube-controller", "helm"]
    assert handed[-1]["fieldsV1"] == {"f:data": {"f:replicas": {}, "f:mode": {}}}
    assert hand_back(managed[:1], "fluxbus") is None


def test_drift_lines_name_the_changed_fields_and_ignore_server_metadata():
    live = {
        "kind": "ConfigMap",
        "metadata": {"name": "x", "resourceVersion": "7"},
        "data": {"a": "1"},
    }
    merged = {
        "kind": "ConfigMap",
        "metadata": {"name": "x", "resourceVersion": "8"},
        "data": {"a": "2"},
    }
    assert drift_line("ConfigMap/default/x", live, merged) == "ConfigMap/default/x changed: data.a"
    assert drift_line("ConfigMap/default/x", live, live) is None
    assert drift_line("ConfigMap/default/x", None, merged) == "ConfigMap/default/x removed"
    objects = manifest_objects("---\n# Source: x\nkind: ConfigMap\nmetadata: {name: x}\n", "apps")
    assert objects[0]["metadata"]["namespace"] == "apps"


def test_a_pending_release_record_is_marked_failed():
    release = {"name": "web", "version": 1, "info": {"status": "pending-install"}}
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    secret = {
        "metadata": {"name": "sh.helm.release.v1.web.v1", "labels": {"status": "pending-install"}},
        "data": {"release": base64.b64encode(packed.encode()).decode()},
    }
    out = mark_failed(secret, "Release unlocked from stale 'pending-install' state")
    assert out["metadata"]["labels"]["status"] == "failed"
    inner = base64.b64decode(base64.b64decode(out["data"]["release"]))
    assert json.loads(gzip.decompress(inner))["info"] == {
        "status": "failed",
        "description": "Release unlocked from stale 'pending-install' state",
    }
    with pytest.raises(ValueError):
        mark_failed({"data": {}}, "x")
