"""The worker protocol: length-prefixed JSON frames over a pipe.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
Requests are `{"id", "op", "args"}`; answers `{"id", "ok": result}` or
`{"id", "error": {"type", "message", ...}}`. A worker first says
`{"ready": true, "available": bool, "pid": int}`.

Pure: no I/O (encoding and decoding only).
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
# A frame carries a chart archive (base64) or a rendered release; 1 GiB is far beyond
# either and stops a corrupt length from allocating without bound.
MAX_FRAME = 2**30


def encode(doc: dict[str, Any]) -> bytes:
    """`doc` as one frame."""
    body = json.dumps(doc, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ValueError(f"a worker frame of {len(body)} bytes is over {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def body_length(header: bytes) -> int:
    """The length a frame header announces; ValueError when it is out of range."""
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ValueError(f"a worker frame announces {length} bytes, over {MAX_FRAME}")
    return int(length)


def decode(body: bytes) -> dict[str, Any]:
    """The document in a frame body."""
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("a worker frame is not a JSON object")
    return doc
