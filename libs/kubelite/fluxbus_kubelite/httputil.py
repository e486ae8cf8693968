"""Small aiohttp helpers shared by the handlers, watches and discovery.

JSON responses, boolean query flags, selector filters and Table negotiation.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fluxbus_common.selectors import (
    LabelPredicate,
    ObjectPredicate,
    parse_field_selector,
    parse_label_selector,
)

from .errors import ApiError


def qbool(value: str | None) -> bool:
    """A boolean query parameter as the API server parses it."""
    if value is None:
        return False
    return value.strip().lower() not in ("", "0", "false")


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is (what the API server sends)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """A JSON response; each warning becomes a `Warning: 299` header."""
    resp = web.Response(text=dumps(obj), status=status, content_type="application/json")
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{w}"'.replace("\n", " "))
    return resp


def error_response(err: ApiError) -> web.Response:
    """The Status body of err with its HTTP code."""
    return json_response(err.status(), status=err.code)


def wants_table(request: web.Request) -> str | None:
    """includeObject policy when the client asked for a Table, else None."""
    if "as=Table" not in request.headers.get("Accept", "").replace(" ", ""):
        return None
    return request.query.get("includeObject", "Metadata") or "Metadata"


def request_filters(request: web.Request) -> tuple[LabelPredicate, ObjectPredicate]:
    """The label and field selector predicates of a list, watch or deletecollection."""
    q = request.query
    return parse_label_selector(q.get("labelSelector")), parse_field_selector(
        q.get("fieldSelector")
    )
