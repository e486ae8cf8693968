"""Keeping secrets out of logs: credentials in URLs, `Bearer`/`Basic`
authorization values, and the values of fields whose name says they hold a
secret are replaced before a log record is written anywhere.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

SENSITIVE_NAMES = (
    "password",
    "passwd",
    "token",
    "authorization",
    "private_key",
    "api_key",
    "apikey",
    "credentials",
    "cookie",
    "secret_value",
)
"""A field named one of these, or ending in `_<one of these>`, holds a secret."""

_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^@/\s]+@")
_AUTH_VALUE = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+"
    r"(?=[A-Za-z0-9._~+/=-]*(?:[0-9+/=._~-]|[a-z][A-Za-z0-9._~+/=-]*[A-Z]))"
    r"[A-Za-z0-9._~+/=-]{8,}"
)
"""An HTTP authorization value: the scheme as headers spell it, then a credential
(one with a digit, a symbol or mixed case, so prose like "Basic authentication"
stays)."""
MAX_DEPTH = 8
"""Nested structures deeper than this are replaced as a whole (log fields are flat)."""


def is_sensitive(name: str) -> bool:
    """Whether a field called `name` holds a secret (`password`, `git_token`, …)."""
    n = name.lower().replace("-", "_")
    return any(n == w or n.endswith(f"_{w}") for w in SENSITIVE_NAMES)


def redact_text(text: str) -> str:
    """Return `text` with URL credentials and authorization values replaced."""
    if "@" in text:
        text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    return _AUTH_VALUE.sub(rf"\g<scheme> {REDACTED}", text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """Return `value` with every string in it redacted (dicts also by field name)."""
    if isinstance(value, str):
        return redact_text(value)
    if depth >= MAX_DEPTH:
        return REDACTED if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_sensitive(str(k)) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, depth + 1) for v in value]
    return value


def redact_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Redact a log record's fields in place and return it (a structlog processor body)."""
    for key, value in list(fields.items()):
        if key in ("exc_info", "stack_info"):
            continue
        fields[key] = REDACTED if is_sensitive(key) else redact_value(value)
    return fields
