"""`gitlab`: a commit status on the event's revision through the GitLab REST API,
skipped when the commit already has one with the same name, state and description
— as Flux.

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
    gitlab_api_base,
    gitlab_project_path,
    parse_git_address,
)
from fluxbus_notifier.providers.transport import ProviderHTTP


def _duplicate(statuses: Any, status: CommitStatus) -> bool:
    if not isinstance(statuses, list):
        return False
    return any(
        isinstance(s, dict)
        and s.get("sha") == status.sha
        and s.get("status") == status.state
        and s.get("description") == status.description
        and s.get("name") == status.context
        for s in statuses
    )


async def send_gitlab(http: ProviderHTTP, event: Event) -> None:
    """Set the commit status for the event (nothing for events without a revision)."""
    c = http.config
    try:
        status = commit_status(event, c.provider_uid, "failed")
        if status is None:
            return
        repo = parse_git_address(c.address)
    except CommitStatusError as e:
        raise http.fail(str(e), retryable=False) from None
    project = f"{gitlab_api_base(repo)}projects/{gitlab_project_path(repo)}"
    headers = {"PRIVATE-TOKEN": c.token or c.password or ""}
    # The project path's %2F reaches GitLab as written (yarl keeps it encoded).
    list_url = (
        f"{project}/repository/commits/{status.sha}/statuses?name={quote(status.context, safe='')}"
    )
    listed = await http.request("GET", list_url, headers=headers)
    try:
        if _duplicate(listed.json(), status):
            return
    except ValueError:
        raise http.fail("unable to list commit status: invalid JSON", retryable=True) from None
    body = {"state": status.state, "name": status.context, "description": status.description}
    await http.post_json(f"{project}/statuses/{status.sha}", body, headers=headers)
