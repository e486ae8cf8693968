"""What Git operations hand back to their callers.

Pure: no I/O. Kept apart from the transports so that ports and reconcilers
can name these types without importing dulwich.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fluxbus_git.logic.refs import Resolved


@dataclass(frozen=True)
class FetchResult:
    """A checked-out revision."""

    resolved: Resolved
    path: Path
    message: str
    """Commit message subject (Flux's event text: "stored artifact for commit '…'")."""
    files: int
    bytes_received: int
