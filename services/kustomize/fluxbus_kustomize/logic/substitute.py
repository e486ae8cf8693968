"""Flux's post-build variable substitution (``spec.postBuild``).

Flux serialises every rendered object to YAML, runs its bash-like envsubst
(fluxcd/pkg/envsubst, a fork of drone/envsubst) over that text and parses the
result again, so a variable may turn ``replicas: ${n}`` into an integer. This
module does the same, with the same operators:

- ``${var}``; defaults ``${var:=d}``, ``${var=d}``, ``${var:-d}``, ``${var-d}``,
  ``${var:+d}``, ``${var:?d}`` (as in Flux, every default operator yields the
  default when the value is empty or unset);
- ``${#var}``, ``${var^}``, ``${var^^}``, ``${var,}``, ``${var,,}``;
- ``${var:pos}``, ``${var:pos:len}`` (negative values count from the end);
- ``${var#glob}``, ``${var##glob}``, ``${var%glob}``, ``${var%%glob}``;
- ``${var/a/b}``, ``${var//a/b}``, ``${var/#a/b}``, ``${var/%a/b}`` (``\\/``
  escapes a slash);
- ``$$`` is an escaped ``$`` (``$${var}`` renders ``${var}``); a bare ``$var``
  is left alone.

Differences from Flux, on purpose: ``${var-default}`` is accepted (Flux's parser
rejects it with "missing closing brace"), and lengths/offsets count characters
rather than UTF-8 bytes.

Strict mode (fluxbus's default, Flux's ``StrictPostBuildSubstitutions``): an
unset variable used without a default operator is an error naming the variable
and the object.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from fluxbus_common.keys import DISABLED, KUSTOMIZE_SUBSTITUTE
from fluxbus_kustomize.logic.manifests import load

VAR_NAME_PATTERN = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
"""The variable-name rule as Flux spells it (POSIX classes, ASCII in Go's RE2)."""
_VAR_NAME_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")

_DEFAULT_OPS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


class SubstitutionError(ValueError):
    """A substitution failed; the message names the variable and, once known, the object."""


# --------------------------------------------------------------------------- parse


@dataclass(frozen=True)
class _Text:
    value: str


@dataclass(frozen=True)
class _Func:
    param: str
    op: str
    args: tuple[tuple[_Node, ...], ...]


_Node = _Text | _Func


class _Parser:
    """Recursive-descent parser with the scanner rules of fluxcd/pkg/envsubst."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.s[j] if j < len(self.s) else ""

    def fail(self, why: str) -> SubstitutionError:
        return SubstitutionError(f"{why} at offset {self.i}")

    # Top level: text with `$$` escapes and `${...}` expressions.
    def parse_top(self) -> list[_Node]:
        nodes: list[_Node] = []
        buf: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.peek(1) == "{":
                if buf:
                    nodes.append(_Text("".join(buf)))
                    buf = []
                self.i += 2
                nodes.append(self.parse_func())
            elif c == "$" and self.peek(1) == "$":
                buf.append("$")
                self.i += 2
            else:
                buf.append(c)
                self.i += 1
        if buf:
            nodes.append(_Text("".join(buf)))
        return nodes

    def ident(self) -> str:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        return self.s[start : self.i]

    def expect_close(self) -> None:
        if self.peek() != "}":
            raise self.fail("bad substitution")
        self.i += 1

    def parse_func(self) -> _Func:
        """Parse after `${` up to and including the closing `}`."""
        if self.peek() == "#":
            self.i += 1
            name = self.ident()
            if not name:
                raise self.fail("bad substitution")
            self.expect_close()
            return _Func(name, "#", ())
        name = self.ident()
        if not name:
            raise self.fail("unable to parse variable name")
        c = self.peek()
        if c == "}":
            self.i += 1
            return _Func(name, "", ())
        if c == ":":
            if self.peek(1) in ("=", "-", "?", "+") and self.peek(1):
                op = self.s[self.i : self.i + 2]
                self.i += 2
                return self.parse_default(name, op)
            self.i += 1
            return self.parse_substr(name)
        if c in ("=", "-"):
            self.i += 1
            return self.parse_default(name, c)
        if c in (",", "^"):
            start = self.i
            while self.peek() in (",", "^") and self.peek() and self.i - start < 2:
                self.i += 1
            op = self.s[start : self.i]
            self.expect_close()
            return _Func(name, op, ())
        if c == "/":
            return self.parse_replace(name)
        if c in ("#", "%"):
            op = c * 2 if self.peek(1) == c else c
            self.i += len(op)
            arg = self.parse_param(stop=("}",))
            self.expect_close()
            return _Func(name, op, (arg,))
        raise self.fail("missing closing brace")

    def parse_param(self, stop: tuple[str, ...], escapes: bool = False) -> tuple[_Node, ...]:
        """Parse text and nested `${...}` until one of `stop` (not consumed)."""
        nodes: list[_Node] = []
        buf: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.fail("missing closing brace")
            if c in stop:
                break
            if c == "$" and self.peek(1) == "{":
                if buf:
                    nodes.append(_Text("".join(buf)))
                    buf = []
                self.i += 2
                nodes.append(self.parse_func())
                continue
            if escapes and c == "$" and self.peek(1) == "$":
                buf.append("$")
                self.i += 2
                continue
            if escapes and c == "\\" and self.peek(1) in ("/", "\\") and self.peek(1):
                buf.append(self.peek(1))
                self.i += 2
                continue
            buf.append(c)
            self.i += 1
        if buf:
            nodes.append(_Text("".join(buf)))
        return tuple(nodes)

    def parse_default(self, name: str, op: str) -> _Func:
        arg = self.parse_param(stop=("}",))
        self.expect_close()
        return _Func(name, op, (arg,) if arg else ())

    def parse_substr(self, name: str) -> _Func:
        if self.peek() in (":", "}"):
            raise self.fail("unable to parse substitution within function")
        args = [self.parse_param(stop=(":", "}"))]
        if self.peek() == ":":
            self.i += 1
            if self.peek() == "}":
                raise self.fail("unable to parse substitution within function")
            args.append(self.parse_param(stop=("}",)))
        self.expect_close()
        return _Func(name, ":", tuple(args))

    def parse_replace(self, name: str) -> _Func:
        self.i += 1  # the first '/'
        op = "/"
        if self.peek() in ("/", "#", "%") and self.peek():
            op += self.peek()
            self.i += 1
        pattern: tuple[_Node, ...] = ()
        if self.peek() != "/":
            pattern = self.parse_param(stop=("/", "}"), escapes=True)
        if self.peek() != "/":
            raise self.fail("bad substitution")
        self.i += 1
        if self.peek() == "}":
            self.i += 1
            return _Func(name, op, (pattern,))
        replacement = self.parse_param(stop=("}",), escapes=True)
        self.expect_close()
        return _Func(name, op, (pattern, replacement))


# --------------------------------------------------------------------------- evaluate


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a shell glob (`*`, `?`, `[...]`, `\\x`) to a regex; `*` also matches `/`."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return re.compile(re.escape(pattern))


def _trim_prefix(s: str, pattern: str, longest: bool) -> str:
    rx = _glob_regex(pattern)
    lengths = range(len(s), 0, -1) if longest else range(1, len(s) + 1)
    for n in lengths:
        if rx.fullmatch(s[:n]):
            return s[n:]
    return s


def _trim_suffix(s: str, pattern: str, longest: bool) -> str:
    rx = _glob_regex(pattern)
    starts = range(0, len(s)) if longest else range(len(s) - 1, -1, -1)
    for start in starts:
        if rx.fullmatch(s[start:]):
            return s[:start]
    return s


def _substr(s: str, args: list[str]) -> str:
    if not args or not _INT_RE.match(args[0]):
        return s
    pos = int(args[0])
    if pos < 0:
        pos = max(len(s) + pos, 0)
    if len(args) == 1:
        return s[pos:]
    if not _INT_RE.match(args[1]):
        return s
    length = int(args[1])
    if length < 0:
        end = len(s) + length
        return "" if end < pos else s[pos:end]
    return s[pos : pos + length]


def _apply(op: str, value: str, args: list[str]) -> str:
    match op:
        case ",":
            return value[:1].lower() + value[1:]
        case ",,":
            return value.lower()
        case "^":
            return value[:1].upper() + value[1:]
        case "^^":
            return value.upper()
        case "#" if not args:
            return str(len(value))
        case "#" | "##":
            return _trim_prefix(value, args[0], longest=op == "##")
        case "%" | "%%":
            return _trim_suffix(value, args[0], longest=op == "%%")
        case ":":
            return _substr(value, args)
        case "/":
            return value.replace(args[0], args[1] if len(args) > 1 else "", 1)
        case "//":
            return value.replace(args[0], args[1] if len(args) > 1 else "")
        case "/#":
            if len(args) == 2 and value.startswith(args[0]):
                return args[1] + value[len(args[0]) :]
            return value
        case "/%":
            if len(args) == 2 and value.endswith(args[0]):
                return value[: len(value) - len(args[0])] + args[1]
            return value
        case _:
            # plain ${var}, the default operators, and unknown casing combinations
            if value == "" and args:
                return "".join(args)
            return value


def _eval(nodes: Iterable[_Node], variables: Mapping[str, str], strict: bool) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.value)
            continue
        args = [_eval(arg, variables, strict) for arg in node.args]
        if node.param in variables:
            value = variables[node.param]
        elif strict and node.op not in _DEFAULT_OPS:
            raise SubstitutionError(f'variable not set (strict mode): "{node.param}"')
        else:
            value = ""
        out.append(_apply(node.op, value, args))
    return "".join(out)


def envsubst(text: str, variables: Mapping[str, str], *, strict: bool = True) -> str:
    """Return `text` with every `${...}` expression expanded from `variables`.

    Raises SubstitutionError on a syntax error, or (strict) on an unset variable
    used without a default operator.
    """
    if "$" not in text:
        return text
    return _eval(_Parser(text).parse_top(), variables, strict)


# --------------------------------------------------------------------------- variables


def validate_variable_names(variables: Mapping[str, str]) -> None:
    """Raise SubstitutionError naming the first variable whose name breaks Flux's rule."""
    for name in variables:
        if not _VAR_NAME_RE.match(name):
            raise SubstitutionError(
                f"'{name}' var name is invalid, must match '{VAR_NAME_PATTERN}'"
            )


def merge_variables(
    substitute_from: Sequence[Mapping[str, str]] = (),
    substitute: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the variables Flux substitutes: `substituteFrom` data in list order
    (later entries win), then the inline `substitute` map on top; newlines stripped.
    """
    merged: dict[str, str] = {}
    for data in substitute_from:
        for key, value in data.items():
            merged[key] = str(value).replace("\n", "")
    for key, value in (substitute or {}).items():
        merged[key] = str(value).replace("\n", "")
    return merged


# --------------------------------------------------------------------------- objects


class _Dumper(yaml.SafeDumper):
    """Emit multi-line strings as literal blocks, as kyaml does."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def object_ref(obj: Mapping[str, Any]) -> str:
    """Return `Kind/namespace/name` (or `Kind/name`) as Flux prints an object."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "")
    return f"{obj.get('kind', '')}/{ns}/{name}" if ns else f"{obj.get('kind', '')}/{name}"


def substitution_disabled(obj: Mapping[str, Any]) -> bool:
    """Return whether the object opts out with `kustomize.toolkit.fluxcd.io/substitute: disabled`."""
    meta = obj.get("metadata") or {}
    return (meta.get("labels") or {}).get(KUSTOMIZE_SUBSTITUTE) == DISABLED or (
        meta.get("annotations") or {}
    ).get(KUSTOMIZE_SUBSTITUTE) == DISABLED


def substitute_object(
    obj: dict[str, Any], variables: Mapping[str, str], *, strict: bool = True
) -> dict[str, Any]:
    """Return the object after substitution on its YAML text (the object itself when disabled).

    Raises SubstitutionError naming the object and the variable.
    """
    if substitution_disabled(obj):
        return obj
    text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=float("inf"), allow_unicode=True)
    return substitute_document(text, obj, variables, strict=strict)


def _reparse(obj: Mapping[str, Any], text: str) -> dict[str, Any]:
    try:
        parsed = load(text)
    except yaml.YAMLError as e:
        raise SubstitutionError(
            f"{object_ref(obj)}: the YAML after substitution does not parse: {e}"
        ) from None
    if not isinstance(parsed, dict):
        raise SubstitutionError(f"{object_ref(obj)}: substitution did not produce an object")
    return parsed


def substitute_document(
    text: str, obj: dict[str, Any], variables: Mapping[str, str], *, strict: bool = True
) -> dict[str, Any]:
    """Return the object after substitution on `text`, its YAML as kustomize emitted it.

    Working on kustomize's own text keeps its quoting: `"${id}"` stays a string
    after substitution, as in Flux. `obj` is `text` parsed (for the opt-out
    annotation and error messages). Raises SubstitutionError naming the object.
    """
    if substitution_disabled(obj):
        return obj
    try:
        out = envsubst(text, variables, strict=strict)
    except SubstitutionError as e:
        raise SubstitutionError(f"{object_ref(obj)}: variable substitution failed: {e}") from None
    if out == text:
        return obj
    return _reparse(obj, out)


def substitute_objects(
    objects: Sequence[dict[str, Any]], variables: Mapping[str, str], *, strict: bool = True
) -> list[dict[str, Any]]:
    """Return the objects after Flux's post-build substitution.

    As in Flux, nothing is substituted when there are no variables at all.
    Raises SubstitutionError (invalid variable name, syntax error, or an unset
    variable in strict mode) naming the object.
    """
    if not variables:
        return list(objects)
    validate_variable_names(variables)
    return [substitute_object(obj, variables, strict=strict) for obj in objects]


def substitute_documents(
    documents: Sequence[tuple[str, dict[str, Any]]],
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    always: bool = False,
) -> list[dict[str, Any]]:
    """Return the objects of `(yaml_text, parsed_object)` pairs after substitution.

    The same rules as `substitute_objects`, applied to each object's own YAML
    text; with `always` (Flux's `substituteStrategy: Always`) even when there are
    no variables, so defaults such as `${var:=d}` apply.
    """
    if not variables and not always:
        return [obj for _, obj in documents]
    validate_variable_names(variables)
    return [substitute_document(text, obj, variables, strict=strict) for text, obj in documents]
