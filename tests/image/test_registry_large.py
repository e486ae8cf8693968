"""A tag list too large to arrive in one read: 10 000 tags answered in one page.

Regression: the client once took the first chunk of the body for the whole
answer and reported "a tag list that is not JSON" for large repositories."""

from __future__ import annotations

from fluxbus_image.logic.reference import parse_image
from fluxbus_image.registry import RegistryClient
from fluxbus_image.testing.registry_server import RegistryServer


async def test_ten_thousand_tags_in_one_page_are_read_to_the_end(registry: RegistryServer):
    tags = [f"1.{i // 100}.{i % 100}" for i in range(10_000)]
    registry.push_tags("big", tags, via_storage=True)
    assert registry.front is not None
    registry.front.ignore_n = True  # everything in one ~150 KB answer
    client = RegistryClient()
    try:
        listing = await client.list_tags(parse_image(registry.image("big")), insecure=True)
    finally:
        await client.close()
    assert sorted(listing.tags) == sorted(tags)
