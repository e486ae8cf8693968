"""The HelmChart decisions of source-controller: reasons, artifact versions, build
summaries, which builds need Helm's engine, and OCI tag choice.

Pure: no I/O.

Artifact revision (= the packaged chart's version), as Flux sets it:
- from a HelmRepository: the chart version; with `valuesFiles`, `+<generation>`
  is added (the consumer must see a values change);
- from a GitRepository: `Chart.yaml`'s version; with `reconcileStrategy: Revision`
  `+<first 12 hex of the source revision>`; with `valuesFiles`, `.<generation>`
  (or `+<generation>`) is appended to that metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from fluxbus_source.logic.helmindex import ChartVersion, pick_version

__all__ = [
    "BUILD_FAILURES",
    "BUILD_SUMMARY",
    "PERSISTENT",
    "REVISION_HEX",
    "BuildSummary",
    "HelmReason",
    "artifact_version",
    "pick_oci_version",
    "source_digest_hex",
]

REVISION_HEX = 12
"""Hex digits of the source revision in a Revision-strategy chart version (Flux's)."""


class HelmReason(StrEnum):
    """source-controller's reasons for HelmRepositories and HelmCharts (condition and
    event reasons alike)."""

    INDEXATION_FAILED = "IndexationFailed"
    CHART_PULL_SUCCEEDED = "ChartPullSucceeded"
    CHART_PACKAGE_SUCCEEDED = "ChartPackageSucceeded"
    SOURCE_UNAVAILABLE = "SourceUnavailable"
    UNSUPPORTED_SOURCE_KIND = "UnsupportedSourceKind"
    NO_SOURCE_ARTIFACT = "NoSourceArtifact"
    INVALID_CHART_REFERENCE = "InvalidChartReference"
    CHART_PULL_ERROR = "ChartPullError"
    METADATA_PATCH_ERROR = "MetadataPatchError"
    VALUES_FILES_ERROR = "ValuesFilesError"
    CHART_PACKAGE_ERROR = "ChartPackageError"
    CHART_VERIFICATION_ERROR = "ChartVerificationError"
    VERIFICATION_ERROR = "VerificationError"
    HELM_UNAVAILABLE = "HelmUnavailable"
    NEW_REVISION = "NewRevision"
    NEW_CHART = "NewChart"


BUILD_SUMMARY = {
    HelmReason.INVALID_CHART_REFERENCE: "invalid chart reference",
    HelmReason.CHART_PULL_ERROR: "chart pull error",
    HelmReason.METADATA_PATCH_ERROR: "chart metadata patch error",
    HelmReason.VALUES_FILES_ERROR: "values files merge error",
    HelmReason.CHART_PACKAGE_ERROR: "chart package error",
    HelmReason.CHART_VERIFICATION_ERROR: "chart verification error",
}
"""Flux's words before a build error ("<summary>: <error>")."""

PERSISTENT = frozenset(
    {
        HelmReason.INVALID_CHART_REFERENCE,
        HelmReason.METADATA_PATCH_ERROR,
        HelmReason.VALUES_FILES_ERROR,
        HelmReason.CHART_VERIFICATION_ERROR,
    }
)
"""Build errors only a spec change can fix (the HelmChart stalls)."""

BUILD_FAILURES = frozenset(
    {
        HelmReason.METADATA_PATCH_ERROR,
        HelmReason.VALUES_FILES_ERROR,
        HelmReason.CHART_PACKAGE_ERROR,
        HelmReason.CHART_VERIFICATION_ERROR,
    }
)
"""Build errors recorded as BuildFailed (the others as FetchFailed)."""


def source_digest_hex(revision: str) -> str:
    """The hex of a source revision: `main@sha1:abc…` → `abc…`, `sha256:abc…` → `abc…`."""
    tail = revision.rsplit("@", 1)[-1]
    return tail.split(":", 1)[-1]


def artifact_version(
    chart_version: str,
    *,
    source_revision: str | None = None,
    values_generation: int | None = None,
) -> str:
    """The version a packaged chart gets (see the module docstring).

    `source_revision`: the Git revision under the Revision strategy (else None);
    `values_generation`: the HelmChart's generation when `valuesFiles` are set.
    Existing build metadata is replaced, as Flux's `SetMetadata` does.
    """
    metadata = ""
    if source_revision:
        metadata = source_digest_hex(source_revision)[:REVISION_HEX]
    if values_generation is not None:
        metadata = f"{metadata}.{values_generation}" if metadata else str(values_generation)
    if not metadata:
        return chart_version
    return f"{chart_version.split('+', 1)[0]}+{metadata}"


@dataclass(frozen=True)
class BuildSummary:
    """What a build did, in Flux's words (Ready message and event)."""

    name: str
    version: str
    packaged: bool
    values_files: Sequence[str] = field(default_factory=tuple)

    @property
    def reason(self) -> HelmReason:
        return (
            HelmReason.CHART_PACKAGE_SUCCEEDED if self.packaged else HelmReason.CHART_PULL_SUCCEEDED
        )

    def __str__(self) -> str:
        action = "packaged" if self.packaged else "pulled"
        text = f"{action} '{self.name}' chart with version '{self.version}'"
        if self.values_files:
            text += f" and merged values files [{' '.join(self.values_files)}]"
        return text


def pick_oci_version(tags: Iterable[str], name: str, constraint: str | None) -> str:
    """The tag of an OCI chart that `constraint` selects (tags spell `+` as `_`).

    Raises `ChartReferenceError` when none matches."""
    versions = [{"name": name, "version": t.replace("_", "+"), "tag": t} for t in tags]
    chosen: ChartVersion = pick_version({"entries": {name: versions}}, name, constraint)
    return next(str(v["tag"]) for v in versions if v["version"] == chosen.version)
