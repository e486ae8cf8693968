"""What a tag listing returns: the tags and the HTTP requests it took (for the benchmark).

Pure: no I/O. Here rather than in the registry adapter so ports can name it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TagListing"]


@dataclass
class TagListing:
    """Tags of a repository, as the registry listed them, and the HTTP requests it took."""

    tags: list[str]
    requests: int
