"""Runs Helm actions for `HelmEngine` (first version: in this process, on threads)."""

from __future__ import annotations

import asyncio
from typing import Any

from .models import WorkerLimits


class WorkerPool:
    """Runs Helm actions on threads of this process (the worker processes come next)."""

    def __init__(self, limits: WorkerLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.workers)

    async def start(self) -> None:
        return None

    async def call(self, op: str, args: dict[str, Any], *, timeout: float) -> Any:
        from . import sdk

        async with self._slots, asyncio.timeout(timeout):
            return await asyncio.to_thread(sdk.call, op, args)

    async def close(self) -> None:
        return None
