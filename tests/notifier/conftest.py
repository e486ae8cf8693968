"""Fixtures of the notifier tests: a stand-in endpoint and an HTTP session
(builders live in `notifier_helpers`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from fluxbus_notifier.testing.endpoints import Endpoint


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    """A plain-HTTP stand-in endpoint, stopped after the test."""
    async with Endpoint() as ep:
        yield ep


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session the adapters send with."""
    async with aiohttp.ClientSession() as s:
        yield s
