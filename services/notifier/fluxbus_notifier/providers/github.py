"""`github`: a commit status on the event's revision through the GitHub REST API
(github.com or Enterprise), skipped when the same context already has the same
state and description — as Flux.

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fluxbus_common.events import Event
from fluxbus_notifier.logic.commit_status import (
    CommitStatus,
    CommitStatusError,
    commit_status,
    github_api_base,
    github_owner_repo,
    parse_git_address,
)
from fluxbus_notifier.providers.transport import ProviderHTTP

GITHUB_API_VERSION = "2022-11-28"
STATUSES_PAGE = 50
"""Flux lists the latest 50 statuses of the commit to find its own context."""


def _duplicate(statuses: Any, status: CommitStatus) -> bool:
    """Whether the newest status with our context already says the same (Flux's rule)."""
    if not isinstance(statuses, list):
        return False
    for s in statuses:
        if not isinstance(s, dict) or None in (
            s.get("context"),
            s.get("state"),
            s.get("description"),
        ):
            continue
        if s["context"] == status.context:
            return bool(s["state"] == status.state and s["description"] == status.description)
    return False


async def send_github(http: ProviderHTTP, event: Event) -> None:
    """Set the commit status for the event (nothing for events without a revision)."""
    c = http.config
    try:
        status = commit_status(event, c.provider_uid, "failure")
        if status is None:
            return
        repo = parse_git_address(c.address)
        owner, name = github_owner_repo(repo)
    except CommitStatusError as e:
        raise http.fail(str(e), retryable=False) from None
    base = f"{github_api_base(repo)}repos/{quote(owner, safe='')}/{quote(name, safe='')}"
    headers = {
        "Authorization": f"Bearer {c.token or c.password}",
        "Accept": "application/vnd.github.v3+json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
    }
    listed = await http.request(
        "GET", f"{base}/commits/{status.sha}/statuses?per_page={STATUSES_PAGE}", headers=headers
    )
    try:
        if _duplicate(listed.json(), status):
            return
    except ValueError:
        raise http.fail("could not list commit statuses: invalid JSON", retryable=True) from None
    body = {"state": status.state, "description": status.description, "context": status.context}
    await http.post_json(f"{base}/statuses/{status.sha}", body, headers=headers)
