"""Whether a GitRepository needs a new artifact: Flux's "no changes since last reconciliation" test.

Pure: no I/O.

source-controller skips the clone when the remote revision equals the
stored artifact's and nothing that shapes the artifact changed: the ignore
rules, sparse checkout, submodule recursion, or the included artifacts.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluxbus_git.logic.refs import same_revision


def rebuild_reason(
    *,
    remote_revision: str,
    artifact_revision: str | None,
    artifact_in_storage: bool = True,
    ignore: str | None = None,
    observed_ignore: str | None = None,
    sparse_checkout: Sequence[str] = (),
    observed_sparse_checkout: Sequence[str] = (),
    recurse_submodules: bool = False,
    observed_recurse_submodules: bool | None = None,
    include_revisions: Sequence[str] = (),
    observed_include_revisions: Sequence[str] = (),
) -> str | None:
    """Return why a new artifact must be built, or None when the stored one is current.

    `include_revisions` are the revisions of the included artifacts now,
    `observed_include_revisions` those the stored artifact was built from
    (status.includedArtifacts[].revision), in spec order.
    """
    if artifact_revision is None:
        return "no artifact"
    if not artifact_in_storage:
        return "artifact missing from storage"
    if not same_revision(remote_revision, artifact_revision):
        return f"new revision '{remote_revision}' (stored '{artifact_revision}')"
    if (ignore or None) != (observed_ignore or None):
        return "spec.ignore changed"
    if sorted(sparse_checkout) != sorted(observed_sparse_checkout):
        return "spec.sparseCheckout changed"
    if recurse_submodules != bool(observed_recurse_submodules):
        return "spec.recurseSubmodules changed"
    if list(include_revisions) != list(observed_include_revisions):
        return "included artifacts changed"
    return None
