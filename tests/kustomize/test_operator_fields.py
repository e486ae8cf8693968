"""A parent Kustomization's apply keeps what an operator set on a stored child
(suspend, reconcile requests, a held rollback) unless Git states it, as Flux's
server-side apply keeps fields another manager owns."""

from __future__ import annotations

from typing import Any

import pytest

from fluxbus_kustomize.logic.operator_fields import keep_operator_fields


def doc(spec: dict[str, Any] | None = None, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "app", "namespace": "apps"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"kind": "HelmRelease", "metadata": meta, "spec": {"interval": "5m", **(spec or {})}}


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        pytest.param(doc(), None, doc(), id="new-object-as-git-says"),
        pytest.param(
            doc(), doc({"suspend": True}), doc({"suspend": True}), id="suspended-stays-suspended"
        ),
        pytest.param(
            doc({"suspend": False}),
            doc({"suspend": True}),
            doc({"suspend": False}),
            id="git-stating-suspend-wins",
        ),
        pytest.param(doc(), doc({"suspend": False}), doc(), id="not-suspended-adds-nothing"),
        pytest.param(
            doc(team="a"),
            doc(team="b", **{"fluxbus.io/rollback-to": "1", "fluxbus.io/suspend-reason": "x"}),
            doc(team="a", **{"fluxbus.io/rollback-to": "1", "fluxbus.io/suspend-reason": "x"}),
            id="held-rollback-kept-other-annotations-from-git",
        ),
        pytest.param(
            doc(),
            doc(**{"reconcile.fluxcd.io/requestedAt": "t1", "reconcile.fluxcd.io/forceAt": "t1"}),
            doc(**{"reconcile.fluxcd.io/requestedAt": "t1", "reconcile.fluxcd.io/forceAt": "t1"}),
            id="reconcile-requests-kept",
        ),
        pytest.param(
            doc(**{"reconcile.fluxcd.io/requestedAt": "git"}),
            doc(**{"reconcile.fluxcd.io/requestedAt": "cli"}),
            doc(**{"reconcile.fluxcd.io/requestedAt": "git"}),
            id="git-stating-an-annotation-wins",
        ),
        pytest.param(doc(), doc(gone="yes"), doc(), id="other-live-annotations-are-not-kept"),
    ],
)
def test_operator_fields_survive_the_parents_apply(desired, live, expected) -> None:
    assert keep_operator_fields(desired, live) == expected


def test_the_desired_document_is_not_modified() -> None:
    desired = doc()
    keep_operator_fields(desired, doc({"suspend": True}, **{"fluxbus.io/rollback-to": "2"}))
    assert desired == doc()
