"""The image service's store adapter: the bus plus tag lists and reconcile requests.

Tag lists live in the object store (`subjects.image_tags_name`) as the JSON
array Flux's database keeps; a reconcile request is Flux's annotation
`reconcile.fluxcd.io/requestedAt`, written with compare-and-set so a
concurrent edit of the object is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.ports import BusError, Entry
from fluxbus_common.reconcile_requests import request_reconcile

EMPTY_LIST = b"[]"
"""How an empty tag list is stored."""
MAX_TAGS_BYTES = 64 * 1024 * 1024
"""A stored tag list larger than this is refused as corrupt (10 000 tags take ~200 KB)."""


def _image_repository(key: str) -> tuple[str, str]:
    _, namespace, name = subjects.split_object_key(key)
    return namespace, name


class BusImageStore:
    """`fluxbus_image.ports.ImageStore` over a connected `Bus`."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    # -- reads passed through ------------------------------------------------------

    async def get_status(self, key: str) -> Entry | None:
        return await self.bus.get_status(key)

    def watch_status(self, kind: str) -> Any:
        return self.bus.watch_status(kind)

    def kv_watch(self, bucket: str, pattern: str = ">", **kwargs: Any) -> Any:
        return self.bus.kv_watch(bucket, pattern, **kwargs)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.bus.get_secret(namespace, name)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.bus.get_configmap(namespace, name)

    async def get_object(self, key: str) -> Entry | None:
        return await self.bus.get_object(key)

    async def list_objects(self, kind: str | None = None) -> list[Entry]:
        return await self.bus.list_objects(kind)

    async def list_status(self, kind: str | None = None) -> list[Entry]:
        return await self.bus.list_status(kind)

    # -- tags ----------------------------------------------------------------------

    async def put_tags(self, key: str, tags: Sequence[str]) -> None:
        data = json.dumps(list(tags), separators=(",", ":")).encode()
        await self.bus.put_blob(subjects.image_tags_name(*_image_repository(key)), data)

    async def get_tags(self, key: str) -> list[str] | None:
        name = subjects.image_tags_name(*_image_repository(key))
        data = await self.bus.get_blob(name)
        if data is None:
            return None
        if len(data) > MAX_TAGS_BYTES:
            raise BusError(f"tag list {name} is larger than {MAX_TAGS_BYTES} bytes")
        try:
            tags = json.loads(data)
        except ValueError as e:
            raise BusError(f"tag list {name} is not valid JSON: {e}") from e
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BusError(f"tag list {name} is not a list of strings")
        return tags

    async def has_tags(self, key: str) -> bool:
        size = await self.bus.artifact_size(subjects.image_tags_name(*_image_repository(key)))
        return size is not None and size > len(EMPTY_LIST)

    async def delete_tags(self, key: str) -> None:
        await self.bus.delete_artifact(subjects.image_tags_name(*_image_repository(key)))

    # -- reconcile requests ----------------------------------------------------------

    async def request_reconcile(self, key: str, token: str) -> bool:
        return await request_reconcile(self.bus, key, token) is not None
