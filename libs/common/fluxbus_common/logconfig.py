"""structlog configuration, done once in each `__main__`: JSON when stdout is
not a TTY, the console renderer on a TTY, context variables merged first,
secrets redacted (`fluxbus_common.redact`) before anything is written, and —
for services — every record also shipped to the logs stream
(`fluxbus_common.logship`).

FLUXBUS_LOG_LEVEL (debug, info, warning, error; default info) sets the level.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from fluxbus_common.logship import SHIPPER
from fluxbus_common.redact import redact_fields

LOG_LEVELS = ("debug", "info", "warning", "error")


def _redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: never write a secret (see `fluxbus_common.redact`)."""
    return redact_fields(dict(event_dict))


def configure(level: str = "info", *, json: bool | None = None, ship: bool = True) -> None:
    """Configure structlog (and stdlib logging, which libraries use) for a process.

    With `ship`, records also go to the logs stream once the service's bus is
    connected (`run_service` starts the sender).
    """
    use_json = not sys.stdout.isatty() if json is None else json
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if use_json:
        processors.append(structlog.processors.format_exc_info)
    processors.append(_redact)
    if ship:
        processors.append(SHIPPER)
        SHIPPER.installed = True
    if use_json:
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr)
