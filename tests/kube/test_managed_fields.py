"""Field ownership and dry-run comparison as pure logic: what fluxbus takes
over from kubectl under ssa Override, and when a dry-run means "unchanged"."""

from __future__ import annotations

from typing import Any

from fluxbus_common.keys import FIELD_MANAGER
from fluxbus_kube.logic.dryrun import resource_version, unchanged
from fluxbus_kube.logic.managed_fields import pointer_fields, takeover


def entry(manager: str, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


OURS = entry(FIELD_MANAGER, "Apply", {"f:spec": {"f:replicas": {}}})
KUBECTL = entry("kubectl-label", "Update", {"f:metadata": {"f:labels": {"f:team": {}}}})
SCALER = entry("kubectl-scale", "Update", {"f:spec": {"f:replicas": {}}})
CONTROLLER = entry("kube-controller-manager", "Update", {"f:status": {}})


def test_kubectl_fields_move_into_the_fluxbus_apply_entry() -> None:
    managed = takeover([OURS, KUBECTL, CONTROLLER])
    assert managed is not None
    assert [e["manager"] for e in managed] == ["kube-controller-manager", FIELD_MANAGER]
    assert managed[-1]["fieldsV1"] == {
        "f:spec": {"f:replicas": {}},
        "f:metadata": {"f:labels": {"f:team": {}}},
    }


def test_nothing_to_take_over_without_kubectl_changes() -> None:
    assert takeover([OURS, CONTROLLER]) is None


def test_drift_ignored_fields_stay_with_their_manager() -> None:
    managed = takeover([OURS, KUBECTL, SCALER], keep=["/spec/replicas"])
    assert managed is not None
    scaler = next(e for e in managed if e["manager"] == "kubectl-scale")
    assert scaler["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert managed[-1]["fieldsV1"]["f:metadata"] == {"f:labels": {"f:team": {}}}


def test_when_everything_kubectl_owns_is_ignored_nothing_is_taken_over() -> None:
    assert takeover([OURS, SCALER], keep=["/spec/replicas"]) is None


def test_a_pointer_through_a_list_disables_the_takeover() -> None:
    assert pointer_fields("/spec/containers/0/image") is None
    assert takeover([OURS, KUBECTL], keep=["/spec/containers/0/image"]) is None


def test_a_dry_run_differing_only_in_write_noise_is_unchanged() -> None:
    live = {"metadata": {"resourceVersion": "7", "managedFields": [OURS]}, "spec": {"a": 1}}
    later = {**OURS, "time": "2026-02-02T00:00:00Z"}
    dry = {"metadata": {"resourceVersion": "8", "managedFields": [later]}, "spec": {"a": 1}}
    assert unchanged(dry, live)
    assert not unchanged({**dry, "spec": {"a": 2}}, live)
    assert not unchanged(dry, None)
    assert resource_version(live) == 7
    assert resource_version({"metadata": {"resourceVersion": "opaque"}}) == 0
