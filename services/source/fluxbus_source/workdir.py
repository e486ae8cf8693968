"""Work directories of the source service: a fresh temp dir per fetch, removed after.

An adapter: `tempfile.mkdtemp` and `shutil.rmtree` block (a large checkout
has thousands of files), so both run in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

PREFIX = "fluxbus-git-"


class WorkDirs:
    """Makes directories under `root` (the system temp dir when None)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    async def make(self) -> Path:
        """Create and return a new private (0700) directory."""
        return Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=PREFIX, dir=self.root))

    async def remove(self, path: Path) -> None:
        """Remove `path` and everything below it; errors are ignored (a leftover is harmless)."""
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
