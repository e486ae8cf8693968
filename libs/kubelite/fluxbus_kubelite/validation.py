"""Validation a real API server does that GitOps users hit, and selectors.

Names (RFC 1123), labels, annotations, immutable selectors; label and field
selector parsing and matching.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value', "
    " or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

Causes = list[tuple[str, str]]


def _q(v: Any) -> str:
    return json.dumps(v)


PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
"""RBAC kinds: names are path segments (`system:auth-delegator`), not DNS subdomains."""


def _path_segment(name: str) -> Causes:
    """The API server's ValidatePathSegmentName: not `.`/`..`, no `/` or `%`."""
    if name in (".", ".."):
        return [("metadata.name", f"Invalid value: {_q(name)}: may not be '{name}'")]
    return [
        ("metadata.name", f"Invalid value: {_q(name)}: may not contain '{c}'")
        for c in ("/", "%")
        if c in name
    ]


def validate_name(name: str, kind: str) -> Causes:
    """Problems with metadata.name for a kind (Namespace: label, Service: DNS-1035,
    RBAC kinds: a path segment)."""
    if kind in PATH_SEGMENT_KINDS:
        return _path_segment(name)
    if kind == "Namespace":
        rx, msg, limit = DNS1123_LABEL, LABEL_MSG, 63
    elif kind == "Service":
        rx, msg, limit = DNS1035_LABEL, DNS1035_MSG, 63
    else:
        rx, msg, limit = DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253
    out: Causes = []
    if len(name) > limit:
        out.append(
            ("metadata.name", f"Invalid value: {_q(name)}: must be no more than {limit} characters")
        )
    if not rx.match(name):
        out.append(("metadata.name", f"Invalid value: {_q(name)}: {msg}"))
    return out


def validate_qualified_name(key: str, field: str) -> Causes:
    out: Causes = []
    prefix, _, name = key.rpartition("/")
    if prefix:
        if len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix):
            out.append((field, f"Invalid value: {_q(key)}: prefix part {SUBDOMAIN_MSG}"))
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        out.append((field, f"Invalid value: {_q(key)}: {QNAME_MSG}"))
    return out


def validate_labels(labels: Any, field: str = "metadata.labels") -> Causes:
    out: Causes = []
    if not isinstance(labels, dict):
        return out
    for k, v in labels.items():
        out.extend(validate_qualified_name(k, field))
        if not isinstance(v, str):
            out.append((f"{field}", f"Invalid value: {_q(v)}: label values must be strings"))
        elif len(v) > 63 or not LABEL_VALUE.match(v):
            out.append((field, f"Invalid value: {_q(v)}: {VALUE_MSG}"))
    return out


def validate_annotations(ann: Any) -> Causes:
    out: Causes = []
    if isinstance(ann, dict):
        for k in ann:
            out.extend(validate_qualified_name(k, "metadata.annotations"))
    return out
