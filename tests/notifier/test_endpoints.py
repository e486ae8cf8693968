"""The stand-in endpoint itself: a waiter is woken by arrivals, and each request
carries the time it arrived (what the notifier benchmark measures with)."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from fluxbus_notifier.testing.endpoints import Endpoint


async def test_a_waiter_is_woken_once_enough_requests_arrived_each_stamped_on_arrival(
    endpoint: Endpoint, session: aiohttp.ClientSession
):
    waiter = asyncio.create_task(endpoint.wait_count(2))
    before = time.perf_counter()
    for i in range(2):
        async with session.post(endpoint.url_for("/hook"), data=f"{i}".encode()) as r:
            assert r.status == 200
    async with asyncio.timeout(5):
        await waiter
    after = time.perf_counter()
    assert [r.body for r in endpoint.requests] == [b"0", b"1"]
    assert before <= endpoint.requests[0].at <= endpoint.requests[1].at <= after
