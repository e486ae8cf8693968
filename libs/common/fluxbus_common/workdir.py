"""Work directories of the services: a fresh private temp dir per fetch or clone, removed after.

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
    """Makes directories under `root` (the system temp dir when None), named `prefix…`."""

    def __init__(self, root: Path | None = None, prefix: str = PREFIX) -> None:
        self.root = root
        self.prefix = prefix

    async def make(self) -> Path:
        """Create and return a new private (0700) directory (creating `root` if needed)."""
        return Path(await asyncio.to_thread(self._make))

    def _make(self) -> str:
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix=self.prefix, dir=self.root)

    async def remove(self, path: Path) -> None:
        """Remove `path` and everything below it; errors are ignored (a leftover is harmless)."""
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
