"""The CLI's one error type: a message for the user and an exit code.

Pure: no I/O.
"""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as `✗ <message>` (never with a traceback), exiting `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
