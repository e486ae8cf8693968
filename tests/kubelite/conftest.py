"""Fixtures of the kubelite tests: namespaces on the shared server, raw HTTP."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator

import pytest
from kubelite_helpers import Raw

from fluxbus_kubelite.testing import KubeliteHandle

_counter = itertools.count()


@pytest.fixture
def ns(kubelite_session: KubeliteHandle, request: pytest.FixtureRequest) -> str:
    """A fresh namespace on the shared server, named after the test."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:40]
    name = f"{base.strip('-')}-{next(_counter)}"
    kubelite_session.ensure_namespace(name)
    return name


@pytest.fixture
def kl(kubelite_session: KubeliteHandle) -> KubeliteHandle:
    """The shared server (short name)."""
    return kubelite_session


@pytest.fixture
async def raw(kubelite_session: KubeliteHandle) -> AsyncIterator[Raw]:
    """Raw HTTP client for the shared server."""
    async with kubelite_session.session() as session:
        yield Raw(session, kubelite_session.url)
