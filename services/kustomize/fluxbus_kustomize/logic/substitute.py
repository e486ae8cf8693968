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

Bounded, since the text and the variables come from a repository and its
ConfigMaps: expressions nest at most ``MAX_NESTING`` deep; the output of a
build's substitution may not exceed ``max_size`` characters (every
intermediate value is checked before it is built, so ``${a//x/${b//y/…}}``
cannot multiply its way to gigabytes); glob trimming (``#``, ``%``, which try
every prefix or suffix) works on values up to ``MAX_GLOB_VALUE`` characters;
the YAML after substitution is parsed within ``fluxbus_common.safeyaml``'s
limits. Each refusal is a ``SubstitutionError`` naming the limit.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from fluxbus_common.keys import DISABLED, KUSTOMIZE_SUBSTITUTE
from fluxbus_common.safeyaml import YamlLimitError
from fluxbus_kustomize.logic.manifests import load

VAR_NAME_PATTERN = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
"""The variable-name rule as Flux spells it (POSIX classes, ASCII in Go's RE2)."""
_VAR_NAME_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")

MAX_NESTING = 64
"""`${` inside `${`: no manifest needs more; the parser recurses per level."""
MAX_OUTPUT = 256 * 1024 * 1024
"""Characters substitution may produce for one build by default (kustomize's output cap)."""
MAX_GLOB_VALUE = 16 * 1024
"""Longest value trimmed by a glob: trimming tries every prefix/suffix against it."""

_DEFAULT_OPS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


class SubstitutionError(ValueError):
    """A substitution failed; the message names the variable and, once known, the object."""


class _Budget:
    """Characters substitution may still produce (shared by the documents of a build)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.left = size

    def check(self, n: int) -> None:
        """Raise SubstitutionError when `n` more characters would not fit."""
        if n > self.left:
            raise SubstitutionError(
                f"the result exceeds {self.size} characters (substitution output limit)"
            )

    def take(self, n: int) -> None:
        self.check(n)
        self.left -= n


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
        self.depth = 0

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
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"expressions nested deeper than {MAX_NESTING} (nesting limit)")
        try:
            return self._parse_func()
        finally:
            self.depth -= 1

    def _parse_func(self) -> _Func:
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


def _replaced_size(value: str, pattern: str, replacement: str, count: int) -> int:
    """Length of `value.replace(pattern, replacement, count)` (-1: all), without building it."""
    found = len(value) + 1 if pattern == "" else value.count(pattern)
    n = found if count < 0 else min(found, count)
    return len(value) + n * (len(replacement) - len(pattern))


def _apply(op: str, value: str, args: list[str], budget: _Budget) -> str:
    if op in ("/", "//") and args:
        rep = args[1] if len(args) > 1 else ""
        budget.check(_replaced_size(value, args[0], rep, 1 if op == "/" else -1))
    if op in ("#", "##", "%", "%%") and args and len(value) > MAX_GLOB_VALUE:
        raise SubstitutionError(
            f"a value of {len(value)} characters is too long to trim with a pattern "
            f"(limit {MAX_GLOB_VALUE})"
        )
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


def _eval(
    nodes: Iterable[_Node],
    variables: Mapping[str, str],
    strict: bool,
    budget: _Budget,
    top: bool = False,
) -> str:
    """Expand `nodes`; the top level takes what it produces from `budget`, nested levels
    (arguments) are only checked against what is left."""
    out: list[str] = []
    size = 0
    for node in nodes:
        if isinstance(node, _Text):
            piece = node.value
        else:
            piece = _eval_func(node, variables, strict, budget)
        size += len(piece)
        if top:
            budget.take(len(piece))
        else:
            budget.check(size)
        out.append(piece)
    return "".join(out)


def _eval_func(node: _Func, variables: Mapping[str, str], strict: bool, budget: _Budget) -> str:
    args = [_eval(arg, variables, strict, budget) for arg in node.args]
    if node.param in variables:
        value = variables[node.param]
    elif strict and node.op not in _DEFAULT_OPS:
        raise SubstitutionError(f'variable not set (strict mode): "{node.param}"')
    else:
        value = ""
    return _apply(node.op, value, args, budget)


def envsubst(
    text: str,
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    max_size: int = MAX_OUTPUT,
    budget: _Budget | None = None,
) -> str:
    """Return `text` with every `${...}` expression expanded from `variables`.

    Raises SubstitutionError on a syntax error, (strict) on an unset variable used
    without a default operator, or over a limit (nesting, `max_size` characters of
    output, or what is left of `budget` when one is shared).
    """
    if "$" not in text:
        return text
    return _eval(_Parser(text).parse_top(), variables, strict, budget or _Budget(max_size), True)


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
    return _substitute_object(obj, variables, strict, _Budget(MAX_OUTPUT))


def _substitute_object(
    obj: dict[str, Any], variables: Mapping[str, str], strict: bool, budget: _Budget
) -> dict[str, Any]:
    if substitution_disabled(obj):
        return obj
    text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=float("inf"), allow_unicode=True)
    return substitute_document(text, obj, variables, strict=strict, budget=budget)


def _reparse(obj: Mapping[str, Any], text: str) -> dict[str, Any]:
    try:
        parsed = load(text)
    except YamlLimitError as e:
        raise SubstitutionError(f"{object_ref(obj)}: the YAML after substitution: {e}") from None
    except yaml.YAMLError as e:
        raise SubstitutionError(
            f"{object_ref(obj)}: the YAML after substitution does not parse: {e}"
        ) from None
    if not isinstance(parsed, dict):
        raise SubstitutionError(f"{object_ref(obj)}: substitution did not produce an object")
    return parsed


def substitute_document(
    text: str,
    obj: dict[str, Any],
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    budget: _Budget | None = None,
) -> dict[str, Any]:
    """Return the object after substitution on `text`, its YAML as kustomize emitted it.

    Working on kustomize's own text keeps its quoting: `"${id}"` stays a string
    after substitution, as in Flux. `obj` is `text` parsed (for the opt-out
    annotation and error messages). `budget`: what substitution may still produce
    (shared by the documents of a build; default `MAX_OUTPUT`). Raises
    SubstitutionError naming the object.
    """
    if substitution_disabled(obj):
        return obj
    try:
        out = envsubst(text, variables, strict=strict, budget=budget)
    except SubstitutionError as e:
        raise SubstitutionError(f"{object_ref(obj)}: variable substitution failed: {e}") from None
    if out == text:
        return obj
    return _reparse(obj, out)


def substitute_objects(
    objects: Sequence[dict[str, Any]],
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    max_size: int = MAX_OUTPUT,
) -> list[dict[str, Any]]:
    """Return the objects after Flux's post-build substitution.

    As in Flux, nothing is substituted when there are no variables at all.
    Raises SubstitutionError (invalid variable name, syntax error, an unset
    variable in strict mode, or more than `max_size` characters produced in all)
    naming the object.
    """
    if not variables:
        return list(objects)
    validate_variable_names(variables)
    budget = _Budget(max_size)
    return [_substitute_object(obj, variables, strict, budget) for obj in objects]


def substitute_documents(
    documents: Sequence[tuple[str, dict[str, Any]]],
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    max_size: int = MAX_OUTPUT,
    always: bool = False,
) -> list[dict[str, Any]]:
    """Return the objects of `(yaml_text, parsed_object)` pairs after substitution.

    The same rules as `substitute_objects`, applied to each object's own YAML
    text, `max_size` characters in all; with `always` (Flux's `substituteStrategy:
    Always`) even when there are no variables, so defaults such as `${var:=d}` apply.
    """
    if not variables and not always:
        return [obj for _, obj in documents]
    validate_variable_names(variables)
    budget = _Budget(max_size)
    return [
        substitute_document(text, obj, variables, strict=strict, budget=budget)
        for text, obj in documents
    ]
