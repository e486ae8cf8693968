"""Lexer and parser of Go's text/template language, producing the tree `gotemplate` executes.

Pure: no I/O.

Follows `text/template/parse`: `{{ }}` actions with trim markers (`{{- ` trims
all whitespace before, ` -}}` all whitespace after), `{{/* */}}` comments,
pipelines, variables with Go's scoping (a variable is known from its
declaration to the `{{end}}` of the enclosing control structure), `if`,
`range`, `with` (each with `else`, `else if`, `else with`), `break`,
`continue`, `define`, `template` and `block`. Parse errors read as Go's:
`template: NAME:LINE: MESSAGE`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

__all__ = [
    "Action",
    "Bool",
    "Break",
    "Chain",
    "Command",
    "Continue",
    "Control",
    "Dot",
    "Field",
    "Identifier",
    "Nil",
    "Node",
    "Number",
    "Pipe",
    "String",
    "TemplateCall",
    "TemplateError",
    "Text",
    "Variable",
    "parse",
]


class TemplateError(Exception):
    """A template that does not parse or does not execute; the message reads as Go's."""


@dataclass
class Node:
    pos: int


@dataclass
class Text(Node):
    text: str


@dataclass
class Dot(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class Nil(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class Bool(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class Number(Node):
    value: int | float
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class String(Node):
    value: str
    quoted: str

    def __str__(self) -> str:
        return self.quoted


@dataclass
class Identifier(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class Field(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class Variable(Node):
    idents: list[str]  # [$name, field, field...]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class Chain(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass
class Command(Node):
    args: list[Node]

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass
class Pipe(Node):
    decl: list[Variable] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            op = " = " if self.is_assign else " := "
            text = ", ".join(str(v) for v in self.decl) + op + text
        return text


@dataclass
class Action(Node):
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class Control(Node):
    kind: str  # if, range, with
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


@dataclass
class Break(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass
class Continue(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass
class TemplateCall(Node):
    name: str
    pipe: Pipe | None

    def __str__(self) -> str:
        quoted = '"' + self.name + '"'
        return "{{template " + quoted + (f" {self.pipe}" if self.pipe else "") + "}}"


# -- lexer ---------------------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str
    val: str
    pos: int


_SPACE = " \t\r\n"
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)
_ACTION_TOKENS = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\[^\n][^'\n]*)')
  | (?P<variable>\$\w*)
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?
        |0[oObB][0-9_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?)i?)
  | (?P<field>\.[^\W\d]\w*)
  | (?P<dot>\.)
  | (?P<ident>[^\W\d]\w*)
    """,
    re.VERBOSE,
)


class _Lexer:
    """Splits a template into text and action tokens, applying trim markers."""

    def __init__(self, src: str, name: str) -> None:
        self.src = src
        self.name = name
        self.toks: list[_Tok] = []

    def fail(self, pos: int, message: str) -> TemplateError:
        line = self.src.count("\n", 0, pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {message}")

    def run(self) -> list[_Tok]:
        src, pos, trim_next = self.src, 0, False
        while True:
            start = src.find("{{", pos)
            text = src[pos:] if start < 0 else src[pos:start]
            if trim_next:
                text = text.lstrip(_SPACE)
            ltrim = start >= 0 and len(src) > start + 3 and src[start + 2] == "-"
            ltrim = ltrim and src[start + 3] in _SPACE
            if ltrim:
                text = text.rstrip(_SPACE)
            if text:
                self.toks.append(_Tok("text", text, start - len(text) if start >= 0 else pos))
            if start < 0:
                break
            inner = start + (4 if ltrim else 2)
            if src.startswith("/*", inner):
                pos, trim_next = self.comment(inner)
            else:
                self.toks.append(_Tok("left", "{{", start))
                pos, trim_next = self.action(inner)
        self.toks.append(_Tok("eof", "", len(src)))
        return self.toks

    def right_delim(self, pos: int) -> tuple[int, bool] | None:
        """Where text resumes and whether to trim, when a right delimiter starts at pos."""
        src = self.src
        if pos + 1 < len(src) and src[pos] in _SPACE and src[pos + 1] == "-":
            if src.startswith("}}", pos + 2):
                return pos + 4, True
        if src.startswith("}}", pos):
            return pos + 2, False
        return None

    def comment(self, pos: int) -> tuple[int, bool]:
        end = self.src.find("*/", pos + 2)
        if end < 0:
            raise self.fail(pos, "unclosed comment")
        delim = self.right_delim(end + 2)
        if delim is None:
            raise self.fail(end, "comment ends before closing delimiter")
        return delim

    def action(self, pos: int) -> tuple[int, bool]:
        src, depth = self.src, 0
        while True:
            delim = self.right_delim(pos)
            if delim is not None and depth == 0:
                self.toks.append(_Tok("right", "}}", pos))
                return delim
            if pos >= len(src):
                raise self.fail(pos, "unclosed action")
            if delim is not None:
                raise self.fail(pos, "unclosed left paren")
            m = _ACTION_TOKENS.match(src, pos)
            if m is None:
                ch = src[pos]
                if ch == '"':
                    raise self.fail(pos, "unterminated quoted string")
                if ch == "`":
                    raise self.fail(pos, "unterminated raw quoted string")
                raise self.fail(pos, f"unrecognized character in action: U+{ord(ch):04X} '{ch}'")
            kind = m.lastgroup or ""
            val = m.group()
            if kind == "number" and m.end() < len(src) and (src[m.end()].isalnum()):
                raise self.fail(pos, f"bad number syntax: {val + src[m.end()]!r}")
            if kind == "ident":
                kind = "keyword" if val in _KEYWORDS else kind
                kind = "bool" if val in ("true", "false") else kind
                kind = "nil" if val == "nil" else kind
            elif kind == "lparen":
                depth += 1
            elif kind == "rparen":
                depth -= 1
                if depth < 0:
                    raise self.fail(pos, "unexpected right paren")
            self.toks.append(_Tok(kind, val, pos))
            pos = m.end()


# -- parser --------------------------------------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPES |= {"\\": "\\", "'": "'", '"': '"'}
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))"
)


def unquote(quoted: str) -> str:
    """The value of a Go string or rune literal (interpreted or raw)."""
    if quoted.startswith("`"):
        return quoted[1:-1].replace("\r", "")
    body = quoted[1:-1]
    out: list[str] = []
    pending = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        if m.start() != pos:
            out.append(pending.decode("utf-8", "replace") + body[pos : m.start()])
            pending.clear()
        simple, hexa, u4, u8, octal = m.groups()
        if hexa or octal:
            pending.append(int(hexa, 16) if hexa else int(octal, 8))
        else:
            out.append(pending.decode("utf-8", "replace"))
            pending.clear()
            out.append(_ESCAPES[simple] if simple else chr(int(u4 or u8, 16)))
        pos = m.end()
    if "\\" in body[pos:]:
        raise ValueError(f"invalid syntax: {quoted}")
    out.append(pending.decode("utf-8", "replace") + body[pos:])
    return "".join(out)


def _number(text: str) -> int | float:
    """Go's constant for a number literal: float when written with a point or exponent."""
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    clean = clean.lstrip("+-")
    if clean.endswith("i"):
        raise ValueError("complex constants are not supported")
    low = clean.lower()
    if low.startswith("0x"):
        if "." in low or "p" in low:
            return sign * float.fromhex(clean)
        return sign * int(clean, 16)
    if low.startswith(("0o", "0b")):
        return sign * int(clean, 0)
    if any(c in low for c in ".e"):
        return sign * float(clean)
    if len(clean) > 1 and clean.startswith("0"):
        return sign * int(clean, 8)
    return sign * int(clean)


class _Parser:
    def __init__(self, toks: list[_Tok], src: str, name: str, funcs: Collection[str]) -> None:
        self.toks, self.i, self.src, self.name, self.funcs = toks, 0, src, name, funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defines: dict[str, list[Node]] = {}

    def fail(self, tok: _Tok, message: str) -> TemplateError:
        line = self.src.count("\n", 0, tok.pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {message}")

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.kind == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        tok = self.next_non_space()
        self.i -= 1
        return tok

    def expect(self, kind: str, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.kind != kind:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: _Tok, context: str) -> TemplateError:
        if tok.kind == "eof":
            return self.fail(tok, f"unexpected EOF in {context}")
        shown = f"<{tok.val}>" if tok.kind not in ("right", "left") else f'"{tok.val}"'
        return self.fail(tok, f"unexpected {shown} in {context}")

    # top level and lists

    def parse(self) -> list[Node]:
        nodes: list[Node] = []
        while self.peek().kind != "eof":
            tok = self.peek()
            if tok.kind == "left" and self._peek_keyword() == "define":
                self.next()
                self.next_non_space()
                self._define(tok)
                continue
            node, end = self.text_or_action()
            if end is not None:
                raise self.fail(end, f"unexpected {{{{{end.val}}}}}")
            if node is not None:
                nodes.append(node)
        return nodes

    def _peek_keyword(self) -> str | None:
        j = self.i + 1
        while self.toks[j].kind == "space":
            j += 1
        return self.toks[j].val if self.toks[j].kind == "keyword" else None

    def _define(self, tok: _Tok) -> None:
        name = self.expect_string("define clause")
        self.expect("right", "define clause")
        body, end = self.item_list("define")
        if end.val != "end":
            raise self.fail(end, f"unexpected {{{{{end.val}}}}} in define clause")
        self.expect("right", "end")
        self.defines[name] = body

    def expect_string(self, context: str) -> str:
        tok = self.next_non_space()
        if tok.kind not in ("string", "raw"):
            raise self.unexpected(tok, context)
        return unquote(tok.val)

    def item_list(self, context: str) -> tuple[list[Node], _Tok]:
        """Nodes up to an {{else}} or {{end}}; returns them and that keyword's token."""
        nodes: list[Node] = []
        while True:
            if self.peek().kind == "eof":
                raise self.fail(self.peek(), "unexpected EOF")
            node, end = self.text_or_action()
            if end is not None:
                return nodes, end
            if node is not None:
                nodes.append(node)

    def text_or_action(self) -> tuple[Node | None, _Tok | None]:
        tok = self.next()
        if tok.kind == "text":
            return Text(tok.pos, tok.val), None
        if tok.kind != "left":
            raise self.unexpected(tok, "input")
        return self.action(tok)

    def action(self, left: _Tok) -> tuple[Node | None, _Tok | None]:
        tok = self.next_non_space()
        if tok.kind == "keyword":
            if tok.val in ("else", "end"):
                return None, tok
            if tok.val in ("if", "range", "with"):
                return self.control(tok), None
            if tok.val in ("break", "continue"):
                self.expect("right", tok.val)
                if not self.range_depth:
                    raise self.fail(tok, f"{{{{{tok.val}}}}} outside {{{{range}}}}")
                return (Break(tok.pos) if tok.val == "break" else Continue(tok.pos)), None
            if tok.val == "template":
                return self.template_call(tok), None
            if tok.val == "block":
                return self.block(tok), None
            raise self.unexpected(tok, "command")
        self.i -= 1
        pipe = self.pipeline("command", "right")
        return Action(left.pos, pipe), None

    def template_call(self, tok: _Tok) -> TemplateCall:
        name = self.expect_string("template clause")
        pipe = None
        if self.peek_non_space().kind != "right":
            pipe = self.pipeline("template clause", "right")
        else:
            self.next_non_space()
        return TemplateCall(tok.pos, name, pipe)

    def block(self, tok: _Tok) -> TemplateCall:
        name = self.expect_string("block clause")
        pipe = self.pipeline("block clause", "right")
        body, end = self.item_list("block")
        if end.val != "end":
            raise self.fail(end, f"unexpected {{{{{end.val}}}}} in block clause")
        self.expect("right", "end")
        self.defines[name] = body
        return TemplateCall(tok.pos, name, pipe)

    def control(self, tok: _Tok) -> Control:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(tok.val, "right")
            if tok.val == "range":
                self.range_depth += 1
            try:
                body, end = self.item_list(tok.val)
            finally:
                if tok.val == "range":
                    self.range_depth -= 1
            else_body: list[Node] | None = None
            if end.val == "else":
                follow = self.peek_non_space()
                if tok.val in ("if", "with") and follow.kind == "keyword" and follow.val == tok.val:
                    nested = self.next_non_space()
                    else_body = [self.control(nested)]
                    return Control(tok.pos, tok.val, pipe, body, else_body)
                self.expect("right", "else")
                else_body, end = self.item_list(tok.val)
                if end.val != "end":
                    raise self.fail(end, "expected end; found {{else}}")
            self.expect("right", "end")
            return Control(tok.pos, tok.val, pipe, body, else_body)
        finally:
            del self.vars[mark:]

    def pipeline(self, context: str, end: str) -> Pipe:
        pipe = Pipe(self.peek_non_space().pos)
        while self.peek_non_space().kind == "variable":
            save = self.i
            var = self.next_non_space()
            after = self.peek_non_space()
            if after.kind in ("declare", "assign"):
                self.next_non_space()
                pipe.is_assign = after.kind == "assign"
                if pipe.is_assign and var.val not in self.vars:
                    raise self.fail(var, f'undefined variable "{var.val}"')
                pipe.decl.append(Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                break
            if after.kind == "comma" and context == "range" and not pipe.decl:
                self.next_non_space()
                pipe.decl.append(Variable(var.pos, [var.val]))
                self.vars.append(var.val)
                continue
            if after.kind == "comma":
                raise self.fail(after, f"too many declarations in {context}")
            self.i = save
            break
        if pipe.decl and self.toks[self.i - 1].kind not in ("declare", "assign"):
            raise self.fail(self.peek(), "range can only initialize variables")
        while True:
            tok = self.next_non_space()
            if tok.kind == end:
                if not pipe.cmds:
                    raise self.fail(tok, f"missing value for {context}")
                for n, cmd in enumerate(pipe.cmds[1:], start=1):
                    if isinstance(cmd.args[0], (Bool, Dot, Nil, Number, String)):
                        raise self.fail(tok, f"non executable command in pipeline stage {n + 1}")
                return pipe
            if tok.kind in (
                "bool", "char", "dot", "field", "ident", "number", "nil", "raw", "string",
                "variable", "lparen",
            ):  # fmt: skip
                self.i -= 1
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.kind == "space":
                continue
            if tok.kind in ("right", "rparen"):
                self.i -= 1
            elif tok.kind != "pipe":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.fail(self.peek(), "empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind != "field":
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().kind == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, Field):
            return Field(pos, node.idents + fields)
        if isinstance(node, Variable):
            return Variable(pos, node.idents + fields)
        if isinstance(node, (Bool, String, Number, Nil, Dot)):
            raise self.fail(self.peek(), f"unexpected . after term {str(node)!r}")
        return Chain(pos, node, fields)

    def term(self) -> Node | None:
        tok = self.next_non_space()
        kind = tok.kind
        if kind == "ident":
            if tok.val not in self.funcs:
                raise self.fail(tok, f'function "{tok.val}" not defined')
            return Identifier(tok.pos, tok.val)
        if kind == "dot":
            return Dot(tok.pos)
        if kind == "nil":
            return Nil(tok.pos)
        if kind == "variable":
            if tok.val not in self.vars:
                raise self.fail(tok, f'undefined variable "{tok.val}"')
            return Variable(tok.pos, [tok.val])
        if kind == "field":
            return Field(tok.pos, [tok.val[1:]])
        if kind == "bool":
            return Bool(tok.pos, tok.val == "true")
        if kind in ("number", "char"):
            try:
                if kind == "char":
                    text = unquote(tok.val)
                    if len(text) != 1:
                        raise ValueError
                    return Number(tok.pos, ord(text), tok.val)
                return Number(tok.pos, _number(tok.val), tok.val)
            except ValueError:
                raise self.fail(tok, f"illegal number syntax: {tok.val!r}") from None
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if kind in ("string", "raw"):
            try:
                return String(tok.pos, unquote(tok.val), tok.val)
            except ValueError as e:
                raise self.fail(tok, str(e)) from None
        self.i -= 1
        return None


def parse(src: str, name: str, funcs: Collection[str]) -> tuple[list[Node], dict[str, list[Node]]]:
    """Parse a template; return its nodes and the templates it defines.

    `funcs` names the functions the template may call. Raises `TemplateError`.
    """
    toks = _Lexer(src, name).run()
    parser = _Parser(toks, src, name, funcs)
    nodes = parser.parse()
    return nodes, parser.defines
