"""The pure rules behind diff, drift reports, history and rollback: what counts
as a difference, how Secrets are masked, how the history grows and is
bounded, and which entry a rollback picks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fluxbus_common.api import Snapshot
from fluxbus_kube.logic.diff import changed_fields, drift_message, object_diff
from fluxbus_kustomize.logic import history as hist


def cm(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", **meta},
        "data": data,
    }


def secret(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "data": {"password": value, "same": "c2FtZQ=="},
    }


@pytest.mark.parametrize(
    ("live", "desired", "action"),
    [
        pytest.param(cm({"a": "1"}), cm({"a": "1"}), None, id="equal-is-no-diff"),
        pytest.param(
            cm({"a": "1"}, resourceVersion="7", uid="u", managedFields=[{"manager": "x"}]),
            cm({"a": "1"}, resourceVersion="8"),
            None,
            id="server-owned-metadata-is-ignored",
        ),
        pytest.param(
            {**cm({"a": "1"}), "status": {"x": 1}}, cm({"a": "1"}), None, id="status-is-ignored"
        ),
        pytest.param(cm({"a": "1"}), cm({"a": "2"}), "drifted", id="changed-value"),
        pytest.param(None, cm({"a": "1"}), "created", id="missing-live"),
        pytest.param(cm({"a": "1"}), None, "deleted", id="would-be-pruned"),
    ],
)
def test_object_diff_classifies_what_would_change(
    live: dict[str, Any] | None, desired: dict[str, Any] | None, action: str | None
) -> None:
    found = object_diff("ConfigMap/ns/c", live, desired)
    assert (found.action if found else None) == action
    if found is not None:
        assert "managedFields" not in found.diff and "resourceVersion" not in found.diff


def test_secret_values_are_masked_but_a_change_still_shows() -> None:
    found = object_diff("Secret/ns/s", secret("b2xk"), secret("bmV3"))
    assert found is not None and found.fields == ("data.password",)
    assert "*** (before)" in found.diff and "*** (after)" in found.diff
    assert "b2xk" not in found.diff and "bmV3" not in found.diff and "c2FtZQ==" not in found.diff


def test_changed_fields_name_leaves_and_list_items() -> None:
    before = {"spec": {"replicas": 1, "ports": [{"port": 80}], "gone": True}}
    after = {"spec": {"replicas": 5, "ports": [{"port": 81}]}}
    assert list(changed_fields(before, after)) == [
        "spec.gone",
        "spec.ports[0].port",
        "spec.replicas",
    ]


def test_drift_message_lists_objects_and_fields() -> None:
    drifted = object_diff("ConfigMap/ns/c", cm({"a": "1"}), cm({"a": "2"}))
    missing = object_diff("ConfigMap/ns/d", None, cm({}))
    assert drifted is not None and missing is not None
    assert drift_message([drifted, missing]) == (
        "Drift detected: ConfigMap/ns/c (data.a); ConfigMap/ns/d (missing)"
    )


def outcome(digest: str, revision: str, status: str = hist.SUCCEEDED, **kw: Any) -> hist.Outcome:
    return hist.Outcome(digest, revision, status, "2026-01-01T00:00:00Z", "1s", **kw)


def test_history_records_newest_first_merges_a_digest_and_drops_past_the_limit() -> None:
    entries: list[Snapshot] = []
    dropped_all: list[str] = []
    for d, rev in (("d1", "r1"), ("d2", "r2"), ("d1", "r1"), ("d3", "r3")):
        entries, dropped = hist.record(entries, outcome(d, rev, pruned=("Kind/x",)), limit=2)
        dropped_all += dropped
    assert [e.digest for e in entries] == ["d3", "d1"]
    assert entries[1].total_reconciliations == 2
    assert hist.pruned_of(entries[0]) == ["Kind/x"]
    assert dropped_all == ["d2"]


def history(*items: tuple[str, str, str]) -> list[Snapshot]:
    entries: list[Snapshot] = []
    for digest, revision, status in reversed(items):
        entries, _ = hist.record(entries, outcome(digest, revision, status), limit=10)
    return entries


HISTORY = history(
    ("d4", "main@sha1:4444444aaaa", "HealthCheckFailed"),
    ("d3", "main@sha1:3333333bbbb", hist.SUCCEEDED),
    ("d2", "main@sha1:2222222cccc", hist.SUCCEEDED),
    ("d1", "main@sha1:1111111dddd", hist.SUCCEEDED),
)


@pytest.mark.parametrize(
    ("to", "steps", "digest"),
    [
        pytest.param(None, None, "d3", id="from-a-failure-one-step-is-the-last-good"),
        pytest.param(None, 2, "d2", id="steps"),
        pytest.param("main@sha1:1111111dddd", None, "d1", id="full-revision"),
        pytest.param("1111111", None, "d1", id="short-sha"),
        pytest.param("d3", None, "d3", id="digest"),
    ],
)
def test_rollback_target_counts_applied_entries_back(
    to: str | None, steps: int | None, digest: str
):
    assert hist.rollback_target(HISTORY, to=to, steps=steps).digest == digest


@pytest.mark.parametrize(
    ("to", "steps", "message"),
    [
        pytest.param("main@sha1:4444444aaaa", None, "no applied history entry", id="failed-entry"),
        pytest.param(None, 4, "cannot go back 4 step(s)", id="too-far"),
        pytest.param(None, 0, "at least 1", id="zero-steps"),
    ],
)
def test_rollback_target_refuses_what_is_not_there(to: str | None, steps: int | None, message: str):
    with pytest.raises(hist.RollbackTargetError, match=re.escape(message)):
        hist.rollback_target(HISTORY, to=to, steps=steps)
