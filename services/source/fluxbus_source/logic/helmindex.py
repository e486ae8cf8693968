"""Helm repository indexes as source-controller reads them: load and normalise an
`index.yaml`, pick a chart version for a `spec.version` range, resolve chart URLs.

Pure: no I/O.

- Loading follows Helm's `loadIndex`: an index without `apiVersion` is refused;
  versions that are not SemVer or lack a name are dropped; each chart's versions
  are sorted newest first (Helm's `SortEntries`).
- The normalised index is canonical JSON (valid YAML, as Flux stores the index
  as JSON): equal indexes give equal bytes, so the artifact revision
  `sha256:<hex>` of those bytes changes only when the index does.
- Version choice is Flux's `GetChartVersion`: an exact version string wins, then
  the highest version satisfying the constraint (`*` or empty: the latest stable
  release; pre-releases only for a constraint naming one, Masterminds' rule),
  equal versions (differing in build metadata) ordered by `created`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import yaml

from fluxbus_common import safeyaml
from fluxbus_common.semver import SemverError, parse_constraints, try_parse_version

__all__ = [
    "MAX_CHART_SIZE",
    "MAX_INDEX_SIZE",
    "ChartReferenceError",
    "ChartVersion",
    "IndexFormatError",
    "index_revision",
    "normalise_index",
    "pick_version",
    "resolve_chart_url",
    "safe_url",
    "same_host",
]

MAX_INDEX_SIZE = 50 * 2**20
"""Largest index accepted (source-controller's `MaxIndexSize`, 50 MiB)."""
MAX_CHART_SIZE = 10 * 2**20
"""Largest chart archive accepted (source-controller's `MaxChartSize`, 10 MiB)."""


class IndexFormatError(ValueError):
    """The bytes are not a Helm repository index."""


class ChartReferenceError(ValueError):
    """No chart (version) in the index answers the reference (Flux: InvalidChartReference)."""


@dataclass(frozen=True)
class ChartVersion:
    """One chart version of an index: what is needed to download and check it."""

    name: str
    version: str
    urls: tuple[str, ...]
    digest: str | None
    """sha256 hex of the archive as the index states it (None: not stated)."""


def safe_url(url: str) -> str:
    """`url` without user information, for messages, logs and status."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when present: real indexes run to tens of megabytes."""


# mypy cannot subclass a base chosen at run time (CSafeLoader exists only with libyaml)
class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader keeping timestamps (`created`) as the strings the index wrote."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(data: bytes) -> Any:
    try:
        return safeyaml.load(data, _Loader)
    except Exception as e:  # yaml.YAMLError or a limit: the message names the line
        raise IndexFormatError(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None


def _version_key(entry: Mapping[str, Any]) -> tuple[Any, str]:
    v = try_parse_version(str(entry.get("version", "")))
    assert v is not None  # filtered before
    return (v, str(entry.get("created") or ""))


def normalise_index(data: bytes) -> bytes:
    """Return the canonical JSON of an index (entries by name, versions newest first).

    CPU-bound for large indexes: callers on an event loop run it in a thread.

    Raises `IndexFormatError` when `data` is over `MAX_INDEX_SIZE`, not YAML, not a
    mapping, or has no `apiVersion` (Helm: "no API version specified").
    """
    if len(data) > MAX_INDEX_SIZE:
        raise IndexFormatError(
            f"index exceeds the maximum index file size of {MAX_INDEX_SIZE} bytes"
        )
    doc = _load_yaml(data)
    if not isinstance(doc, dict):
        raise IndexFormatError("index is not a YAML mapping")
    if not doc.get("apiVersion"):
        raise IndexFormatError("no API version specified")
    entries = doc.get("entries") or {}
    if not isinstance(entries, dict):
        raise IndexFormatError("'entries' is not a mapping")
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(entries, key=str):
        versions = entries[name] or []
        if not isinstance(versions, list):
            raise IndexFormatError(f"entries of chart '{name}' are not a list")
        kept = [
            v
            for v in versions
            if isinstance(v, dict)
            and v.get("name")
            and try_parse_version(str(v.get("version", ""))) is not None
        ]
        # newest first; stable for equal keys so the output is deterministic
        kept.sort(key=_version_key, reverse=True)
        out[str(name)] = kept
    normalised = {**doc, "entries": out}
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"), default=str).encode()


def index_revision(normalised: bytes) -> str:
    """Flux's revision of an index artifact: `sha256:<hex>` of its bytes."""
    return f"sha256:{hashlib.sha256(normalised).hexdigest()}"


def pick_version(index: Mapping[str, Any], name: str, constraint: str | None) -> ChartVersion:
    """The version of chart `name` that `constraint` selects in a normalised index.

    Raises `ChartReferenceError` with Helm's/Flux's words when the chart is absent,
    has no versions, no version matches, or the constraint does not parse.
    """
    entries = index.get("entries") or {}
    versions = entries.get(name)
    if versions is None:
        raise ChartReferenceError("no chart name found")
    if not versions:
        raise ChartReferenceError("no chart version found")
    wanted = (constraint or "").strip()
    chosen: Mapping[str, Any] | None = None
    if wanted:
        chosen = next((v for v in versions if str(v.get("version")) == wanted), None)
    if chosen is None:
        try:
            cons = parse_constraints(wanted if wanted and wanted != "*" else "*")
        except SemverError as e:
            raise ChartReferenceError(str(e)) from None
        matching = [
            v
            for v in versions
            if (pv := try_parse_version(str(v.get("version", "")))) is not None and cons.check(pv)
        ]
        if not matching:
            raise ChartReferenceError(
                f"no '{name}' chart with version matching '{constraint or '*'}' found"
            )
        chosen = max(matching, key=_version_key)
    urls = tuple(str(u) for u in chosen.get("urls") or [])
    digest = chosen.get("digest")
    return ChartVersion(
        name=str(chosen.get("name") or name),
        version=str(chosen["version"]),
        urls=urls,
        digest=str(digest) if digest else None,
    )


def resolve_chart_url(repository_url: str, ref: str) -> str:
    """Helm's `ResolveReferenceURL`: an absolute chart URL as is, a relative one
    against the repository URL taken as a directory (its query string kept)."""
    ref_parts = urlsplit(ref)
    if ref_parts.scheme:
        return ref
    base = urlsplit(repository_url)
    base = base._replace(path=base.path.rstrip("/") + "/")
    resolved = urlsplit(urljoin(urlunsplit(base._replace(query="")), ref))
    if base.query and not resolved.query:
        resolved = resolved._replace(query=base.query)
    return urlunsplit(resolved)


def same_host(a: str, b: str) -> bool:
    """Whether two URLs name the same host and port (credentials may go to it
    without `passCredentials`)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname, pa.port) == (pb.hostname, pb.port)
