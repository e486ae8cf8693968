"""Helpers for the kubelite tests: raw HTTP, polling, manifests; fixtures live in conftest."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import yaml

_counter = itertools.count()


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll predicate until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def await_until(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.05
) -> Any:
    """Async form of wait_until."""
    async with asyncio.timeout(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(interval)


class Raw:
    """Raw HTTP against kubelite: status, parsed body and headers."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/json",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        data = None
        if body is not None:
            data = body if isinstance(body, str | bytes) else json.dumps(body)
        hdrs = {"Content-Type": ctype, **(headers or {})}
        async with self.session.request(
            method, self.url + path, data=data, params=params, headers=hdrs
        ) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return resp.status, parsed, resp.headers

    async def apply(
        self, path: str, obj: dict[str, Any] | str, manager: str = "test", **params: str
    ) -> tuple[int, Any, Any]:
        body = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        return await self(
            "PATCH",
            path,
            body,
            ctype="application/apply-patch+yaml",
            params={"fieldManager": manager, **params},
        )


def deployment(
    name: str, image: str = "nginx:1.25", replicas: int | None = 2, **extra: Any
) -> dict[str, Any]:
    """A small Deployment manifest."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    spec.update(extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **meta},
        "data": data or {},
    }


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by manager name (operation appended when several)."""
    out = {}
    for m in obj["metadata"].get("managedFields", []):
        key = m["manager"] if m["manager"] not in out else f"{m['manager']}/{m['operation']}"
        out[key] = m
    return out
