"""Refusing, before anything is applied, a Kustomization whose output holds Flux
kinds fluxbus does not serve yet (`logic.unserved`), naming each object and
the repository file it comes from.

The files are read from the source artifact only when there is something to
report: YAML members of the tarball, each and all together bounded, read in a
thread.
"""

from __future__ import annotations

import asyncio
import tarfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Stalling
from fluxbus_kustomize.logic.unserved import describe, find_not_served

MAX_FILE_BYTES = 1024 * 1024
"""A manifest larger than this is not searched (a generated bundle, not a hand-written file)."""
MAX_TOTAL_BYTES = 32 * 1024 * 1024
"""What one search reads at most from an artifact, whatever its size."""
MANIFEST_SUFFIXES = (".yaml", ".yml")

FileLoader = Callable[[], Awaitable[Mapping[str, str]]]
"""Returns the artifact's manifest files (path → text) when called."""


def read_manifest_files(tarball: Path) -> dict[str, str]:
    """Return path → text of the YAML files of an artifact tarball (blocking).

    Only regular files are read, each up to MAX_FILE_BYTES and MAX_TOTAL_BYTES
    in all; an unreadable tarball yields what was read so far.
    """
    out: dict[str, str] = {}
    total = 0
    try:
        with tarfile.open(tarball, "r:*") as tf:
            for member in tf:
                if not member.isfile() or not member.name.endswith(MANIFEST_SUFFIXES):
                    continue
                if member.size > MAX_FILE_BYTES or total + member.size > MAX_TOTAL_BYTES:
                    continue
                handle = tf.extractfile(member)
                if handle is None:
                    continue
                data = handle.read(MAX_FILE_BYTES + 1)
                total += len(data)
                out[member.name.removeprefix("./")] = data.decode("utf-8", errors="replace")
    except (tarfile.TarError, OSError, EOFError):
        pass  # only used to name files in a message: a partial answer is enough
    return out


async def refuse_not_served(objects: Sequence[Mapping[str, Any]], files: FileLoader) -> None:
    """Raise Stalling(ReconciliationFailed) naming every object of a kind fluxbus does
    not serve yet and its file; return when there is none."""
    found = find_not_served(objects)
    if not found:
        return
    message = describe(found, await files())
    raise Stalling(
        f"{message}\n(see the README's Flux compatibility section)",
        Reason.RECONCILIATION_FAILED,
    )


async def manifest_files(tarball: Path) -> dict[str, str]:
    """`read_manifest_files` in a thread."""
    return await asyncio.to_thread(read_manifest_files, tarball)
