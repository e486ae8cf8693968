"""API errors and the `Status` objects a real API server answers with.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the API answers with a `kind: Status` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The Status object of this error."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        _details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        _details(name, group, plural),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; causes are (field, message) pairs with messages like `Invalid value: ...`."""
    qkind = f"{kind}.{group}" if group else kind
    msgs = [f"{f}: {m}" for f, m in causes]
    if len(msgs) == 1:
        text = msgs[0]
    else:
        text = "[" + ", ".join(msgs) + "]"
    d: dict[str, Any] = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    d["causes"] = [{"reason": _cause_reason(m), "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", f'{qkind} "{name}" is invalid: {text}', d)


def _cause_reason(message: str) -> str:
    if message.startswith("Required value"):
        return "FieldValueRequired"
    if message.startswith("Forbidden"):
        return "FieldValueForbidden"
    if message.startswith("Unsupported value"):
        return "FieldValueNotSupported"
    return "FieldValueInvalid"


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media(content_type: str, protobuf: bool = True) -> ApiError:
    """415; `protobuf=False` when the body's kind has no protobuf form kubelite decodes."""
    accepted = "application/json, application/yaml"
    if protobuf:
        accepted += ", application/vnd.kubernetes.protobuf"
    return ApiError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: {accepted}; got "{content_type}"',
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
