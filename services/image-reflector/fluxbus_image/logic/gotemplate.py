"""Go text/template for commit message templates: `render(template, data)`.

Pure: no I/O.

Parses with `gotemplate_parse` and executes as text/template's exec.go does:
pipelines pass each command's result as the last argument of the next;
`.A.B` walks struct fields (capitalised attributes, promoted through
`__go_embedded__`), map keys and methods (a callable attribute is called, as
`.Changed.Changes` is in Flux); a missing map key is `<no value>`, a missing
struct field an error; `range` over slices, maps (keys in Go's sorted order)
and integers; `if`/`with`/`range` with `else`; `break`/`continue`; variables
scoped to their control structure; `and`/`or` short-circuit. See
`gotemplate_fmt` for how Python values stand in for Go's.

Errors are `TemplateError` with Go's text: parse errors
`template: NAME:LINE: MSG`, execution errors
`template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG` (COL counts bytes
from 0 as Go's ErrorContext does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from fluxbus_image.logic.gotemplate_fmt import (
    MISSING,
    go_type,
    is_struct,
    sorted_items,
    struct_fields,
    truth,
    vformat,
)
from fluxbus_image.logic.gotemplate_funcs import BUILTINS, SPRIG, FuncError
from fluxbus_image.logic.gotemplate_parse import (
    Action,
    Bool,
    Break,
    Chain,
    Command,
    Continue,
    Control,
    Dot,
    Field,
    Identifier,
    Nil,
    Node,
    Number,
    Pipe,
    String,
    TemplateCall,
    TemplateError,
    Text,
    Variable,
    parse,
)

__all__ = ["DEFAULT_FUNCS", "MAX_OUTPUT_CHARS", "TemplateError", "render"]

DEFAULT_FUNCS: Mapping[str, Callable[..., Any]] = {**BUILTINS, **SPRIG}
MAX_OUTPUT_CHARS = 1 << 20
"""A commit message is short; a template producing a megabyte is a mistake (or a loop)."""
MAX_DEPTH = 100
"""Go's text/template refuses `{{template}}` recursion deeper than 100000; 100 is plenty here."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def render(
    template: str,
    data: object,
    *,
    name: str = "messageTemplate",
    funcs: Mapping[str, Callable[..., Any]] | None = None,
) -> str:
    """Render a Go text/template over `data`; return the text.

    `funcs` replaces the function map (default: text/template's built-ins and
    the hermetic Sprig subset). Raises `TemplateError` with Go's message.
    """
    table = DEFAULT_FUNCS if funcs is None else {**BUILTINS, **funcs}
    nodes, defines = parse(template, name, table.keys())
    state = _State(template, name, table, defines, data)
    state.walk(data, nodes)
    return "".join(state.out)


def _arity(fn: Callable[..., Any]) -> tuple[int, int | None]:
    """(minimum, maximum or None for variadic) positional arguments of a function."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 0, None
    low, high = 0, 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return low, None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            high += 1
            if p.default is p.empty:
                low += 1
    return low, high


class _State:
    def __init__(
        self,
        src: str,
        name: str,
        funcs: Mapping[str, Callable[..., Any]],
        defines: dict[str, list[Node]],
        data: object,
    ) -> None:
        self.src, self.name, self.funcs, self.defines = src, name, funcs, defines
        self.vars: list[tuple[str, object]] = [("$", data)]
        self.out: list[str] = []
        self.size = 0
        self.node: Node | None = None
        self.depth = 0

    # errors

    def error(self, message: str) -> NoReturn:
        node = self.node
        pos = node.pos if node is not None else 0
        before = self.src[:pos]
        line = before.count("\n") + 1
        col = len(before[before.rfind("\n") + 1 :].encode())
        context = str(node) if node is not None else ""
        raise TemplateError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{context}>: {message}'
        )

    def at(self, node: Node) -> None:
        self.node = node

    # variables

    def var(self, name: str) -> object:
        for key, value in reversed(self.vars):
            if key == name:
                return value
        self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: object) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.error(f"undefined variable: {name}")

    # walking

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            self.error(f"output longer than {MAX_OUTPUT_CHARS} characters")
        self.out.append(text)

    def walk(self, dot: object, nodes: list[Node]) -> None:
        for node in nodes:
            self.walk_node(dot, node)

    def walk_node(self, dot: object, node: Node) -> None:
        self.at(node)
        if isinstance(node, Text):
            self.emit(node.text)
        elif isinstance(node, Action):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.emit(self.printable(value))
        elif isinstance(node, Control):
            mark = len(self.vars)
            try:
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    value = self.eval_pipeline(dot, node.pipe)
                    if truth(value):
                        self.walk(value if node.kind == "with" else dot, node.body)
                    elif node.else_body is not None:
                        self.walk(dot, node.else_body)
            finally:
                del self.vars[mark:]
        elif isinstance(node, Break):
            raise _Break
        elif isinstance(node, Continue):
            raise _Continue
        elif isinstance(node, TemplateCall):
            self.walk_template(dot, node)

    def walk_template(self, dot: object, node: TemplateCall) -> None:
        body = self.defines.get(node.name)
        if body is None:
            self.error(f'template "{node.name}" not defined')
        if self.depth >= MAX_DEPTH:
            self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved = self.vars
        self.vars = [("$", value)]
        self.depth += 1
        try:
            self.walk(value, body)
        finally:
            self.depth -= 1
            self.vars = saved

    def walk_range(self, dot: object, node: Control) -> None:
        value = self.eval_pipeline(dot, node.pipe)
        items: list[tuple[object, object]]
        if isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = sorted_items(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                self.error(f"can't use {value} to iterate over more than one variable")
            items = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            items = []
        else:
            self.error(f"range can't iterate over {vformat(value)}")
        decl = node.pipe.decl
        for index, elem in items:
            mark = len(self.vars)
            if decl:
                if node.pipe.is_assign:
                    if len(decl) > 1:
                        self.set_var(decl[0].idents[0], index)
                        self.set_var(decl[1].idents[0], elem)
                    else:
                        self.set_var(decl[0].idents[0], elem)
                elif len(decl) > 1:
                    self.vars[mark - 2] = (decl[0].idents[0], index)
                    self.vars[mark - 1] = (decl[1].idents[0], elem)
                else:
                    self.vars[mark - 1] = (decl[0].idents[0], elem)
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]
        if not items and node.else_body is not None:
            self.walk(dot, node.else_body)

    def printable(self, value: object) -> str:
        if (callable(value) and not is_struct(value)) or inspect.isroutine(value):
            self.error(f"can't print {value!r} of type func")
        return vformat(value)

    # evaluation

    def eval_pipeline(self, dot: object, pipe: Pipe) -> object:
        value: object = MISSING
        final: object = MISSING
        for i, cmd in enumerate(pipe.cmds):
            value = self.eval_command(dot, cmd, final if i else MISSING)
            final = value
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append((var.idents[0], value))
        return value

    def eval_command(self, dot: object, cmd: Command, final: object) -> object:
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, Chain):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.eval_function(dot, first, cmd, final)
        if isinstance(first, Variable):
            return self.eval_variable(dot, first, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Nil):
            self.error("nil is not a command")
        return self.constant(dot, first)

    def constant(self, dot: object, node: Node) -> object:
        if isinstance(node, Bool):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Number):
            return node.value
        if isinstance(node, String):
            return node.value
        if isinstance(node, Nil):
            return None
        self.at(node)
        self.error(f"can't handle {node}")

    def not_a_function(self, args: list[Node], final: object) -> None:
        if len(args) > 1 or final is not MISSING:
            self.error(f"can't give argument to non-function {args[0]}")

    def eval_arg(self, dot: object, node: Node) -> object:
        self.at(node)
        if isinstance(node, Field):
            value = self.eval_field_chain(dot, dot, node, node.idents, [node], MISSING)
        elif isinstance(node, Variable):
            value = self.eval_variable(dot, node, [node], MISSING)
        elif isinstance(node, Pipe):
            value = self.eval_pipeline(dot, node)
        elif isinstance(node, Identifier):
            value = self.eval_function(dot, node, Command(node.pos, [node]), MISSING)
        elif isinstance(node, Chain):
            value = self.eval_chain(dot, node, [node], MISSING)
        else:
            value = self.constant(dot, node)
        return None if value is MISSING else value

    def eval_variable(self, dot: object, node: Variable, args: list[Node], final: object) -> object:
        self.at(node)
        value = self.var(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_chain(self, dot: object, chain: Chain, args: list[Node], final: object) -> object:
        if len(args) > 1 or final is not MISSING:
            self.at(chain)
            self.error(f"can't give argument to non-function {args[0]}")
        if isinstance(chain.node, Nil):
            self.at(chain)
            self.error("indirection through explicit nil in " + str(chain))
        pipe = self.eval_arg(dot, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_field_chain(
        self,
        dot: object,
        receiver: object,
        node: Node,
        idents: list[str],
        args: list[Node],
        final: object,
    ) -> object:
        self.at(node)
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, [], MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(
        self,
        dot: object,
        name: str,
        node: Node,
        args: list[Node],
        final: object,
        receiver: object,
    ) -> object:
        if receiver is MISSING:
            return MISSING
        has_args = len(args) > 1 or final is not MISSING
        if isinstance(receiver, dict):
            if has_args:
                self.error(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        if receiver is None:
            self.error(f"nil pointer evaluating interface {{}}.{name}")
        if is_struct(receiver):
            found, value = _lookup(receiver, name)
            if found:
                if inspect.ismethod(value) or inspect.isfunction(value):
                    return self.call(dot, value, node, name, args[1:], final)
                if has_args:
                    self.error(f"{name} has arguments but cannot be invoked as function")
                return value
            if any(n == name for n, _ in struct_fields(receiver)):
                self.error(f"{name} is an unexported field of struct type {go_type(receiver)}")
        self.error(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(self, dot: object, ident: Identifier, cmd: Command, final: object) -> object:
        self.at(ident)
        name = ident.name
        if name in ("and", "or"):
            return self.eval_and_or(dot, name, cmd, final)
        fn = self.funcs.get(name)
        if fn is None:
            self.error(f'"{name}" is not a defined function')
        return self.call(dot, fn, cmd, name, cmd.args[1:], final)

    def eval_and_or(self, dot: object, name: str, cmd: Command, final: object) -> object:
        nodes = cmd.args[1:]
        count = len(nodes) + (final is not MISSING)
        if count < 1:
            self.at(cmd)
            self.error(f"wrong number of args for {name}: want at least 1 got 0")
        value: object = MISSING
        for i in range(count):
            value = self.eval_arg(dot, nodes[i]) if i < len(nodes) else final
            if value is MISSING:
                value = None
            if truth(value) == (name == "or"):
                return value
        return value

    def call(
        self,
        dot: object,
        fn: Callable[..., Any],
        node: Node,
        name: str,
        arg_nodes: list[Node],
        final: object,
    ) -> object:
        args = [self.eval_arg(dot, a) for a in arg_nodes]
        if final is not MISSING:
            args.append(final)
        self.at(node)
        low, high = _arity(fn)
        if len(args) < low or (high is not None and len(args) > high):
            want = f"at least {low}" if high is None else str(low if len(args) < low else high)
            self.error(f"wrong number of args for {name}: want {want} got {len(args)}")
        try:
            return fn(*args)
        except FuncError as e:
            self.error(f"error calling {name}: {e}")


def _lookup(receiver: object, name: str) -> tuple[bool, object]:
    """An exported field or method of a struct, promoted through embedded structs."""
    if name[:1].isupper() and hasattr(receiver, name):
        return True, getattr(receiver, name)
    for embedded in getattr(type(receiver), "__go_embedded__", ()):
        inner = getattr(receiver, embedded, None)
        if inner is not None:
            found, value = _lookup(inner, name)
            if found:
                return True, value
    return False, None
