"""Git commit statuses (github, gitlab) as notification-controller sets them.

Pure: no I/O.

- the commit comes from the event metadata `commit`, else `originRevision`, else
  `revision` (Flux's `Event.GetRevision`), in any Flux revision format
  (`main@sha1:<40hex>`, `sha1:<40hex>`, legacy `main/<40hex>`, a bare SHA-1); an
  event without one is skipped, and so is a `Progressing` event;
- the state is `success` for info and `failure` (GitHub) / `failed` (GitLab) for
  errors; the description is the reason split at its camel case and lower-cased
  (`ReconciliationSucceeded` → `reconciliation succeeded`);
- the context is Flux's default `<kind>/<name>/<first segment of the Provider
  UID>`, lower-cased (`<kind>/<name>` when the Provider has no UID);
- the API base is `https://api.github.com/` for github.com and `<host>/api/v3/`
  for GitHub Enterprise (as go-github), `<host>/api/v4/` for GitLab; an ssh or
  scp-like address is turned into https, `.git` is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fluxbus_common.events import Event
from fluxbus_git.logic.refs import split_revision

__all__ = [
    "CommitStatus",
    "CommitStatusError",
    "GitRepository",
    "commit_status",
    "event_revision",
    "github_api_base",
    "github_owner_repo",
    "gitlab_api_base",
    "gitlab_project_path",
    "parse_git_address",
    "parse_revision",
    "split_camel_case",
]

PROGRESSING_REASON = "Progressing"
"""Flux does not set a commit status for progress events."""

REVISION_KEYS = ("commit", "originRevision", "revision")
"""Metadata keys holding the commit, in Flux's order of preference."""

_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).+)$")


class CommitStatusError(ValueError):
    """An event or address a commit status cannot be built from (Flux's error text)."""


@dataclass(frozen=True)
class CommitStatus:
    """One commit status to set: on `sha`, identified by `context`."""

    sha: str
    state: str
    description: str
    context: str


@dataclass(frozen=True)
class GitRepository:
    """A Provider address split into the web host (`https://host[:port]`) and `org/repo`."""

    host: str
    path: str


def split_camel_case(text: str) -> list[str]:
    """Words of a CamelCase string as Flux's splitCamelcase (`PDFLoader` → PDF, Loader)."""
    runs: list[list[str]] = []
    last = 0
    for ch in text:
        cls = 1 if ch.islower() else 2 if ch.isupper() else 3 if ch.isdigit() else 4
        if runs and cls == last:
            runs[-1].append(ch)
        else:
            runs.append([ch])
        last = cls
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(r) for r in runs if r]


def _describe(reason: str) -> str:
    return " ".join(split_camel_case(reason)).lower()


def event_revision(event: Event) -> str | None:
    """The revision an (enriched) event names, or None."""
    for key in REVISION_KEYS:
        if key in event.metadata:
            return event.metadata[key]
    return None


def parse_revision(revision: str) -> str:
    """The SHA-1 of a Flux revision string; raises CommitStatusError for anything else."""
    if ":" in revision:
        sha = revision.rpartition(":")[2]
    else:
        _, sha = split_revision(revision)
    if not _SHA1.match(sha):
        raise CommitStatusError(f"failed to extract commit hash from '{revision}' revision")
    return sha


def commit_status(
    event: Event, provider_uid: str | None, failure_state: str
) -> CommitStatus | None:
    """The status to set for `event`, or None when Flux would skip it (a Progressing
    event, no revision). `failure_state`: "failure" (GitHub) or "failed" (GitLab).

    Raises CommitStatusError for a revision without a SHA-1 or a trace event."""
    if event.reason == PROGRESSING_REASON:
        return None
    revision = event_revision(event)
    if revision is None:
        return None
    sha = parse_revision(revision)
    severity = str(event.severity)
    if severity == "info":
        state = "success"
    elif severity == "error":
        state = failure_state
    else:
        raise CommitStatusError(f"can't convert severity '{severity}' to a commit state")
    obj = event.involved_object
    context = f"{obj.kind}/{obj.name}"
    if provider_uid:
        context += "/" + provider_uid.split("-")[0]
    return CommitStatus(sha, state, _describe(event.reason), context.lower())


def parse_git_address(address: str) -> GitRepository:
    """Split a repository address (https://, http://, ssh:// or scp-like) as Flux's
    parseGitAddress: ssh becomes https, `.git` and leading slashes are dropped."""
    if "://" not in address:
        m = _SCP_LIKE.match(address)
        if not m:
            raise CommitStatusError("the address is not a repository URL")
        scheme, netloc, path = "https", m["host"], m["path"]
    else:
        parts = urlsplit(address)
        scheme = "https" if parts.scheme == "ssh" else parts.scheme
        netloc = parts.hostname or ""
        if parts.port is not None and parts.scheme != "ssh":
            netloc = f"{netloc}:{parts.port}"
        path = parts.path
    path = path.lstrip("/").removesuffix(".git")
    if not netloc or not path:
        raise CommitStatusError("the address is not a repository URL")
    return GitRepository(f"{scheme}://{netloc}", path)


def github_api_base(repo: GitRepository) -> str:
    """go-github's base URL for the repository's host (public or Enterprise)."""
    host = urlsplit(repo.host).hostname or ""
    if host == "github.com":
        return "https://api.github.com/"
    if host.startswith("api.") or ".api." in host:
        return repo.host + "/"
    return repo.host + "/api/v3/"


def github_owner_repo(repo: GitRepository) -> tuple[str, str]:
    """(owner, repository) of a GitHub address; raises CommitStatusError unless `org/repo`."""
    parts = repo.path.split("/")
    if len(parts) != 2 or not all(parts):
        raise CommitStatusError(f"invalid repository id: '{repo.path}'")
    return parts[0], parts[1]


def gitlab_api_base(repo: GitRepository) -> str:
    """The GitLab REST API base of the repository's host."""
    return repo.host + "/api/v4/"


def gitlab_project_path(repo: GitRepository) -> str:
    """The project id as GitLab's API wants it in a path (`group%2Fsub%2Frepo`)."""
    return quote(repo.path, safe="")
