"""The Setters update strategy: rewrite the image fields marked with `$imagepolicy` comments.

Pure: no I/O.

`update_yaml(content, policies, path=...)` does to one file what
image-automation-controller's `update.UpdateWithSetters` does to each file it
reads, but byte-preserving: only the marked scalar values are replaced,
every other byte (comments, indentation, quoting, key order, flow style,
block scalars, CRLF, BOM, document markers) stays as it was. Flux instead
re-serialises the whole file with kyaml.

What counts as a marker, as kyaml's `fieldmeta.Read` decides it:

- The comment of a scalar value in a block mapping or a block sequence (never
  a key). Its text, with every leading `#` removed, must be a JSON object of
  strings (Go's `json.Unmarshal` into `map[string]string`; `null` counts as
  ""), whose `"$imagepolicy"` entry names a setter. Any JSON spacing works;
  anything after the object (a second comment) spoils it.
- The line comment (`image: foo:v1 # {"$imagepolicy": "ns:name"}`) is read
  first; if it is absent or is not a marker, the head comment is: a single
  comment line right above a value that starts its own line (`- foo:v1` in a
  sequence, or a value under its key). Two comment lines above make a
  multi-line head comment, which never parses as JSON.
- Setter names, per policy `<ns>:<name>`: `<ns>:<name>` (the full image,
  `name:tag[@digest]`), `<ns>:<name>:tag`, `:name` and `:digest` (empty when
  the policy has no digest). A marker naming another setter changes nothing.
- Block scalars (`|`, `>`) and scalars inside flow collections are left alone:
  a comment after a flow collection belongs to the collection, not a scalar.

Files without the quoted token `"$imagepolicy"` are returned untouched without
parsing (Flux screens for the same token). A replaced value keeps its quoting
style; a plain value that YAML 1.1 or 1.2 would read as something other than a
string (`1.10`, `true`, `yes`, `0x1f`, ``) or that cannot be written plain is
written double-quoted (Flux's `FormatNonStringStyle` and the yaml.v3 encoder
do the same).

Changes carry the object of their document (`apiVersion`, `kind`,
`metadata.name`, `metadata.namespace`; empty strings when absent). Where Flux
drops the change record of a document with none of these (kyaml's
`ErrMissingMetadata`) but still writes the file, fluxbus records it with an
empty object.

Only the event stream of the YAML parser is used: aliases are never expanded,
so the work is linear in the input; oversize input, too many aliases or too
deep nesting are refused with `SetterParseError` all the same, like a file
that does not parse (the caller skips and reports it, as Flux's problem files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import yaml
from yaml.emitter import Emitter
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from fluxbus_common.api.image import ImageRef

__all__ = [
    "MAX_ALIASES",
    "MAX_CONTENT_BYTES",
    "MAX_DEPTH",
    "SETTER_TOKEN",
    "Change",
    "FileUpdate",
    "ObjectId",
    "SetterParseError",
    "setter_values",
    "update_yaml",
]

SETTER_TOKEN = b'"$imagepolicy"'
"""Flux screens files for the setter shorthand quoted as Go's `%q` prints it."""
SHORTHAND_KEY = "$imagepolicy"
MAX_CONTENT_BYTES = 10 * 1024 * 1024
"""Largest file considered; manifests are kilobytes, a larger one is not a manifest to edit."""
MAX_ALIASES = 10_000
"""More aliases than a hand-written manifest ever has: a sign of a YAML bomb."""
MAX_DEPTH = 1_000
"""Nesting deeper than any Kubernetes object."""


@dataclass(frozen=True, order=True)
class ObjectId:
    """The object a change was made in (Flux's ObjectIdentifier); empty strings when absent."""

    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Change:
    """One value replaced by a setter (Flux's update.Change, plus where it happened)."""

    old_value: str
    new_value: str
    setter: str
    object: ObjectId = ObjectId()
    file: str = ""


@dataclass
class FileUpdate:
    """The new content of one file and the changes made to it (none: content is the input)."""

    content: bytes
    changes: list[Change] = field(default_factory=list)


class SetterParseError(ValueError):
    """A file carrying setter markers is not YAML the setters can work on."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where or '<input>'}: {reason}")


def setter_values(policies: Mapping[str, ImageRef]) -> dict[str, str]:
    """Return the value of every setter the policies define, keyed by setter name.

    `policies` are keyed `"<namespace>:<name>"`, as the markers name them.
    """
    values: dict[str, str] = {}
    for key, ref in policies.items():
        values[key] = str(ref)
        values[f"{key}:tag"] = ref.tag
        values[f"{key}:name"] = ref.name
        values[f"{key}:digest"] = ref.digest or ""
    return values


def update_yaml(content: bytes, policies: Mapping[str, ImageRef], *, path: str = "") -> FileUpdate:
    """Apply the setters of `policies` to one YAML file's bytes.

    Returns the new content and the changes, in file order (the content is the
    input itself when nothing changed). Raises `SetterParseError` for a marked
    file that is not valid UTF-8 YAML, or is too large or too alias-heavy.
    """
    if SETTER_TOKEN not in content:
        return FileUpdate(content)
    if len(content) > MAX_CONTENT_BYTES:
        raise SetterParseError(path, 0, f"file larger than {MAX_CONTENT_BYTES} bytes")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        line = content.count(b"\n", 0, e.start) + 1
        raise SetterParseError(path, line, "invalid UTF-8") from e
    values = setter_values(policies)
    edits: list[tuple[int, int, str]] = []
    changes: list[Change] = []
    for start, end, replacement, change in _find_changes(text, values, path):
        edits.append((start, end, replacement))
        changes.append(change)
    if not edits:
        return FileUpdate(content)
    out: list[str] = []
    pos = 0
    for start, end, replacement in edits:
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return FileUpdate("".join(out).encode("utf-8"), changes)


# -- scanning ------------------------------------------------------------------------------------


class _EventStream(Reader, Scanner, Parser):
    """PyYAML's parser without a composer, remembering the scalar token behind each event."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        self.last_scalar: yaml.ScalarToken | None = None

    def get_token(self) -> yaml.Token:
        token: yaml.Token = Scanner.get_token(self)  # type: ignore[no-untyped-call]
        if isinstance(token, yaml.ScalarToken):
            self.last_scalar = token
        return token


@dataclass
class _Frame:
    """One open collection: is it a mapping, is it flow, is a key next, where is it."""

    mapping: bool
    flow: bool
    path: tuple[str, ...] | None
    expect_key: bool = True
    last_key: str | None = None


@dataclass
class _Candidate:
    start: int
    end: int
    style: str | None
    old: str
    setter: str


_META_PATHS = {
    ("apiVersion",): "api_version",
    ("kind",): "kind",
    ("metadata", "name"): "name",
    ("metadata", "namespace"): "namespace",
}


def _find_changes(
    text: str, values: Mapping[str, str], path: str
) -> Iterator[tuple[int, int, str, Change]]:
    """Yield (start, end, replacement, change) for each marked value to change, in order."""
    stream = _EventStream(text)
    stack: list[_Frame] = []
    meta: dict[str, str] = {}
    pending: list[_Candidate] = []
    aliases = 0
    try:
        while stream.check_event():
            event = stream.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.DocumentStartEvent):
                meta, pending = {}, []
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                obj = ObjectId(**meta)
                for c in pending:
                    new = values[c.setter]
                    yield (
                        c.start,
                        c.end,
                        _render(new, c.style),
                        Change(c.old, new, c.setter, obj, path),
                    )
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            parent = stack[-1] if stack else None
            is_key = parent is not None and parent.mapping and parent.expect_key
            node_path: tuple[str, ...] | None = () if parent is None else None
            if parent is not None and parent.mapping:
                parent.expect_key = not parent.expect_key
                if not is_key and parent.path is not None and parent.last_key is not None:
                    node_path = (*parent.path, parent.last_key)
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise SetterParseError(path, _line(event), "too many aliases")
                if is_key and parent is not None:
                    parent.last_key = None
                continue
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise SetterParseError(path, _line(event), "nesting too deep")
                flow = bool(event.flow_style) or (parent is not None and parent.flow)
                stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), flow, node_path))
                if is_key and parent is not None:
                    parent.last_key = None
                continue
            assert isinstance(event, yaml.ScalarEvent)
            if is_key:
                assert parent is not None
                parent.last_key = event.value
                continue
            if node_path is not None and node_path in _META_PATHS:
                meta[_META_PATHS[node_path]] = event.value
            token = stream.last_scalar
            if parent is None or parent.flow or token is None or token.style in ("|", ">"):
                continue
            setter = _marker(text, token.start_mark.index, token.end_mark.index, values)
            if setter is not None and values[setter] != event.value:
                pending.append(
                    _Candidate(
                        token.start_mark.index,
                        token.end_mark.index,
                        token.style,
                        event.value,
                        setter,
                    )
                )
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise SetterParseError(path, line, e.problem or str(e)) from e
    except yaml.YAMLError as e:  # ReaderError: a character YAML does not allow
        raise SetterParseError(path, 0, str(e)) from e


def _line(event: yaml.Event) -> int:
    """1-based line of an event (0 when unknown)."""
    return event.start_mark.line + 1 if event.start_mark is not None else 0


# -- markers -------------------------------------------------------------------------------------

_LINE_COMMENT = re.compile(r"[ \t]+#([^\r\n]*)")
_LEADING = re.compile(r"[ \t]*(?:-[ \t]+)*\Z")
_COMMENT_LINE = re.compile(r"[ \t]*#([^\r\n]*)\Z")


def _line_bounds(text: str, index: int) -> tuple[int, int]:
    """Start and end (before the line break) of the line holding `index`."""
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    end = len(text)
    for brk in ("\n", "\r"):
        i = text.find(brk, index)
        if i != -1:
            end = min(end, i)
    return start, end


def _marker(text: str, start: int, end: int, values: Mapping[str, str]) -> str | None:
    """The known setter named by the line comment or the head comment of the scalar at start:end."""
    _, line_end = _line_bounds(text, end)
    line_comment = _LINE_COMMENT.match(text, end, line_end)
    if line_comment is not None and line_comment.end() == line_end:
        name = _setter_name(line_comment.group(1), values)
        if name is not None:
            return name
    line_start, _ = _line_bounds(text, start)
    if not _LEADING.match(text[line_start:start]) or line_start == 0:
        return None
    prev_start, prev_end = _line_bounds(text, line_start - 1)
    if text[line_start - 1] == "\n" and line_start >= 2 and text[line_start - 2] == "\r":
        prev_start, prev_end = _line_bounds(text, line_start - 2)
    head = _COMMENT_LINE.match(text[prev_start:prev_end])
    if head is None:
        return None
    if prev_start > 0:
        before_start, before_end = _line_bounds(text, prev_start - 1)
        if text[prev_start - 1] == "\n" and prev_start >= 2 and text[prev_start - 2] == "\r":
            before_start, before_end = _line_bounds(text, prev_start - 2)
        if _COMMENT_LINE.match(text[before_start:before_end]):
            return None  # a multi-line head comment is never a JSON object
    return _setter_name(head.group(1), values)


def _setter_name(comment: str, values: Mapping[str, str]) -> str | None:
    """The setter a comment's text (after `#`) names, if it is a marker for a known setter."""
    body = comment.lstrip("#")
    if SHORTHAND_KEY not in body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if not all(v is None or isinstance(v, str) for v in parsed.values()):
        return None  # Go's json.Unmarshal into map[string]string fails
    name = parsed.get(SHORTHAND_KEY)
    return name if name and name in values else None


# -- writing -------------------------------------------------------------------------------------

_RESOLVER = Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
_YAML11_BOOLS = frozenset({"y", "Y", "n", "N"})
"""go-yaml v2 (kyaml's YAML 1.1 check) reads these as booleans; PyYAML does not."""
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)\Z")
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
"""yaml.v3's resolver: Go's ParseInt with base prefixes, and its float pattern."""


def _plain_safe(value: str) -> bool:
    """Whether `value` written plain in a block mapping reads back as this very string."""
    if not value or value in _YAML11_BOOLS:
        return False
    if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != _STR_TAG:  # type: ignore[no-untyped-call]
        return False
    plain = value.replace("_", "")
    if _GO_INT.match(plain) or _YAML_STYLE_FLOAT.match(plain):
        return False
    analysis = Emitter.analyze_scalar(_ANALYZER, value)
    return bool(analysis.allow_block_plain and not analysis.multiline)


_ANALYZER = Emitter.__new__(Emitter)
_ANALYZER.allow_unicode = True


def _render(value: str, style: str | None) -> str:
    """The YAML text for `value` in the quoting style of the value it replaces."""
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    if style is None and _plain_safe(value):
        return value
    return json.dumps(value, ensure_ascii=False)
