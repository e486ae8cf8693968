"""The store port the Receiver webhook server works through: the Receivers'
objects and status (KV watches), their Secrets (tokens), and the objects it
annotates (list, read, compare-and-set). The concrete `Bus` is one.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Protocol

from fluxbus_common.ports import Entry, ObjectEditor, SecretReader, StatusReader


class ReceiverStore(StatusReader, SecretReader, ObjectEditor, Protocol):
    """What the webhook server reads and writes."""

    async def list_objects(self, kind: str | None = None) -> list[Entry]:
        """Return every desired object of a kind (lower-case kind)."""
        ...
