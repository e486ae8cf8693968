"""Reading manifests for `apply -f` and `delete -f`: files, directories
(recursive `*.yaml`/`*.yml`, sorted) and stdin, validated all or nothing.

Errors name the file, the document number and the field, and never show a
Secret's value (pydantic's "(got …)" is dropped for data fields).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fluxbus_cli.errors import CliError
from fluxbus_common.api import AnyObject, InvalidObject, ObjectMeta, load_documents

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml")


def read_sources(paths: list[str]) -> list[tuple[str, str]]:
    """Return (source name, text) for every input: `-` is stdin, a directory is
    walked recursively for *.yaml/*.yml. Raises CliError for a missing path."""
    if not paths:
        raise CliError("give at least one -f PATH (or -f - for stdin)")
    out: list[tuple[str, str]] = []
    for raw in paths:
        if raw == STDIN:
            out.append(("stdin", sys.stdin.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
            )
            out.extend((str(p), _read(p)) for p in files)
        elif path.is_file():
            out.append((raw, _read(path)))
        else:
            raise CliError(f"{raw}: no such file or directory")
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: cannot read: {e}") from None


def check_namespace(namespace: str) -> str:
    """Return `namespace` if it is a valid Kubernetes namespace name, else raise CliError."""
    try:
        ObjectMeta(name="check", namespace=namespace)
    except ValueError:
        raise CliError(
            f'invalid namespace "{namespace}": must be a lowercase RFC 1123 label'
        ) from None
    return namespace


def load(sources: list[tuple[str, str]], default_namespace: str) -> list[AnyObject]:
    """Validate every document of every source; return the objects or raise CliError
    listing every problem (one line per source). Documents without a namespace get
    `default_namespace`."""
    check_namespace(default_namespace)
    objects: list[AnyObject] = []
    problems: list[str] = []
    for source, text in sources:
        try:
            objects.extend(load_documents(text, source))
        except InvalidObject as e:
            # One line per failing document, not one "; "-joined line per file.
            message = str(e).replace(f"; {source}: document ", f"\n{source}: document ")
            problems.append(redact_values(message))
    if problems:
        raise CliError("\n".join(problems))
    for obj in objects:
        if "namespace" not in obj.metadata.model_fields_set:
            obj.metadata.namespace = default_namespace
    return objects


_DATA_FIELD = re.compile(r"(?:^|[.\]\s])(?:data|stringData|binaryData)(?:[.\[:]|$)")
_GOT = " (got "


def redact_values(message: str) -> str:
    """Drop the offending value pydantic quotes as ` (got …)` from clauses about
    `data`/`stringData`/`binaryData` fields, so a Secret's value is never shown."""
    out: list[str] = []
    i = 0
    while True:
        j = message.find(_GOT, i)
        if j < 0:
            out.append(message[i:])
            return "".join(out)
        clause_start = max(
            message.rfind("; ", 0, j), message.rfind(": document ", 0, j), message.rfind("\n", 0, j)
        )
        clause = message[clause_start + 1 : j]
        end = _end_of_got(message, j + len(_GOT))
        if _DATA_FIELD.search(clause):
            out.append(message[i:j])
        else:
            out.append(message[i:end])
        i = end


def _end_of_got(message: str, start: int) -> int:
    """Return the index just past the `)` closing a ` (got <json>)` starting at `start`."""
    try:
        _, end = json.JSONDecoder().raw_decode(message, start)
        if message.startswith(")", end):
            return end + 1
    except ValueError:
        pass
    truncated = message.find("...)", start)  # values longer than 60 characters
    if truncated >= 0:
        return truncated + 4
    close = message.find(")", start)
    return len(message) if close < 0 else close + 1
