"""Typed client-go clients (Helm's release storage) send protobuf bodies; kubelite decodes them."""

from __future__ import annotations

from typing import Any

import pytest
from kubelite_helpers import Raw, configmap

from fluxbus_kubelite import protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num: int, value: int | bytes | str) -> bytes:
    """One protobuf field: varint for ints and bools, length-delimited otherwise."""
    if isinstance(value, bool | int):
        return _varint(num << 3) + _varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """The k8s protobuf envelope: magic, then runtime.Unknown{typeMeta, raw, encoding, type}."""
    type_meta = field(1, api_version) + field(2, kind)
    return protobuf.MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


@pytest.mark.parametrize(
    ("api_version", "raw", "expected"),
    [
        pytest.param("v1", b"", {}, id="empty options as client-go sends them"),
        pytest.param(
            "v1",
            field(1, 0) + field(4, "Foreground") + field(5, "All"),
            {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"]},
            id="grace period, propagation and dry-run",
        ),
        pytest.param(
            "apps/v1",
            field(2, field(1, "u-1") + field(2, "42")) + field(3, True),
            {"preconditions": {"uid": "u-1", "resourceVersion": "42"}, "orphanDependents": True},
            id="preconditions and orphaning, any group version",
        ),
        pytest.param(
            "meta.k8s.io/v1",
            field(1, -1),
            {"gracePeriodSeconds": -1},
            id="negative int64",
        ),
    ],
)
def test_delete_options_decode_from_protobuf(
    api_version: str, raw: bytes, expected: dict[str, Any]
) -> None:
    decoded = protobuf.decode(envelope(api_version, "DeleteOptions", raw))
    assert decoded == {"apiVersion": api_version, "kind": "DeleteOptions", **expected}


async def test_a_protobuf_delete_honours_dry_run_and_preconditions(raw: Raw, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    status, created, _ = await raw("POST", path, configmap("c1"))
    assert status == 201
    item = f"{path}/c1"

    dry = envelope("v1", "DeleteOptions", field(5, "All"))
    status, _, _ = await raw("DELETE", item, dry, ctype=PROTOBUF)
    assert status == 200
    assert (await raw("GET", item))[0] == 200

    stale = envelope("v1", "DeleteOptions", field(2, field(1, "not-the-uid")))
    status, body, _ = await raw("DELETE", item, stale, ctype=PROTOBUF)
    assert (status, body["reason"]) == (409, "Conflict")

    uid = created["metadata"]["uid"]
    matching = envelope("v1", "DeleteOptions", field(2, field(1, uid)))
    status, _, _ = await raw("DELETE", item, matching, ctype=PROTOBUF)
    assert status == 200
    assert (await raw("GET", item))[0] == 404


async def test_a_protobuf_body_of_an_unknown_kind_is_unsupported_media(raw: Raw, ns: str) -> None:
    body = envelope("v1", "Pod", b"")
    status, answer, _ = await raw("POST", f"/api/v1/namespaces/{ns}/pods", body, PROTOBUF)
    assert (status, answer["reason"]) == (415, "UnsupportedMediaType")
    assert "accepted media types include: application/json, application/yaml;" in answer["message"]
