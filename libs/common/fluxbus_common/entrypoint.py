"""How a service's process runs and ends: `run_main` runs the service's main
coroutine and turns an address it cannot listen on (`ListenError`, e.g. a port
another service already holds) into one line on stderr naming the variable to
set, and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from fluxbus_common.httpserver import ListenError

EXIT_SETTINGS = 2
"""Exit code of a process stopped by its settings (the usual code of a usage error):
restarting it as is cannot help, a setting must change."""


def find_listen_error(error: BaseException) -> ListenError | None:
    """The ListenError in `error`, or in the exception groups a TaskGroup raised."""
    if isinstance(error, ListenError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = find_listen_error(inner)
            if found is not None:
                return found
    return None


def run_main(prog: str, main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)`; on a ListenError print `<prog>: <error>` to stderr and
    exit with EXIT_SETTINGS. Any other error propagates unchanged."""
    try:
        asyncio.run(main)
    except (ListenError, BaseExceptionGroup) as e:
        found = find_listen_error(e)
        if found is None:
            raise
        print(f"{prog}: {found}", file=sys.stderr)
        raise SystemExit(EXIT_SETTINGS) from None
