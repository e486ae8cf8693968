"""The functions a Flux commit message template can call: text/template's built-ins and the
hermetic Sprig functions people use in commit messages.

Pure: no I/O.

Built-ins follow text/template's funcs.go (`index`, `slice`, `len`, `print`,
`printf`, `println`, `html`, `js`, `urlquery`, `not`, `eq ne lt le gt ge`;
`and`/`or` are evaluated lazily by the executor). Sprig's are a subset of
`sprig.HermeticTxtFuncMap()` (what image-automation-controller installs): the
string helpers, `toString`, hashes, `default`/`empty`/`coalesce`/`ternary`,
`list`, `join`, `split`, `trunc`, `indent`. Functions raise `FuncError`; the
executor reports it as Go does (`error calling NAME: ...`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from fluxbus_image.logic.gotemplate_fmt import (
    MISSING,
    go_type,
    is_struct,
    printf,
    sprint,
    sprintln,
    truth,
    vformat,
)

__all__ = ["BUILTINS", "SPRIG", "FuncError", "compare_eq"]


class FuncError(Exception):
    """A function refused its arguments; the text is Go's."""


Func = Callable[..., Any]


def _s(value: object) -> str:
    """A string parameter: Go converts nothing, so anything else is a type error."""
    if isinstance(value, str):
        return value
    if value is None or value is MISSING:
        raise FuncError("invalid value; expected string")
    raise FuncError(f"wrong type for value; expected string; got {go_type(value)}")


def _i(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FuncError(f"wrong type for value; expected int; got {go_type(value)}")


# -- text/template built-ins ---------------------------------------------------------------------


def _index(item: object, *indexes: object) -> object:
    if item is None or item is MISSING:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        if isinstance(item, (list, tuple, str)):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise FuncError(f"cannot index slice/array with type {go_type(idx)}")
            seq: Any = item.encode() if isinstance(item, str) else item
            if not 0 <= idx < len(seq):
                raise FuncError(f"index out of range: {idx}")
            item = seq[idx]
        elif isinstance(item, dict):
            if idx in item:
                item = item[idx]
            else:
                sample = next(iter(item.values()), "")
                item = type(sample)() if isinstance(sample, (str, list, dict, int)) else None
        elif item is None:
            raise FuncError("index of nil pointer")
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: object, *indexes: object) -> object:
    if not isinstance(item, (str, list, tuple)):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str) and len(indexes) == 3:
        raise FuncError("cannot 3-index slice a string")
    seq: Any = item.encode() if isinstance(item, str) else item
    bounds = [_i(i) for i in indexes]
    if len(bounds) == 3:
        bounds = bounds[:2]
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(seq)
    if not 0 <= start <= end <= len(seq):
        raise FuncError(f"index out of range: {end if end > len(seq) else start}")
    part = seq[start:end]
    return part.decode("utf-8", "replace") if isinstance(item, str) else list(part)


def _len(item: object) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    if item is None or item is MISSING:
        raise FuncError("len of nil pointer")
    raise FuncError(f"len of type {go_type(item)}")


_NUMBER = (int, float)


def _basic(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None or value is MISSING:
        return "nil"
    return "other"


def compare_eq(a: object, b: object) -> bool:
    """Go's template `eq` for one pair."""
    ka, kb = _basic(a), _basic(b)
    if ka == "nil" or kb == "nil":
        return ka == kb
    if ka == "other" or kb == "other":
        if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            raise FuncError(f"non-comparable type {vformat(a)}: {go_type(a)}")
        if type(a) is not type(b):
            raise FuncError("incompatible types for comparison")
        return a == b
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return a == b


def _eq(a: object, *others: object) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    return any(compare_eq(a, b) for b in others)


def _lt(a: object, b: object) -> bool:
    ka, kb = _basic(a), _basic(b)
    if ka in ("bool", "nil", "other") or kb in ("bool", "nil", "other"):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    return bool(a < b)  # type: ignore[operator]


def _args_text(args: tuple[object, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(args)


def _html(*args: object) -> str:
    text = _args_text(args)
    table = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
    return "".join(table.get(c, c) for c in text)


def _js(*args: object) -> str:
    out: list[str] = []
    for c in _args_text(args):
        if c in "\\'\"":
            out.append("\\" + c)
        elif c in "<>&=" or ord(c) < 0x20 or not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: object) -> str:
    return urllib.parse.quote_plus(_args_text(args), safe="-_.~")


BUILTINS: dict[str, Func] = {
    "index": _index,
    "slice": _slice,
    "len": _len,
    "not": lambda a: not truth(a),
    "print": lambda *a: sprint(a),
    "println": lambda *a: sprintln(a),
    "printf": lambda f, *a: printf(_s(f), a),
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    "eq": _eq,
    "ne": lambda a, b: not compare_eq(a, b),
    "lt": _lt,
    "le": lambda a, b: _lt(a, b) or compare_eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or compare_eq(a, b)),
    "ge": lambda a, b: not _lt(a, b),
    # and/or are special forms of the executor; listed so that the parser knows them.
    "and": lambda *a: a[-1],
    "or": lambda *a: a[-1],
}


# -- Sprig (hermetic subset) ---------------------------------------------------------------------


def to_string(value: object) -> str:
    """Sprig's strval: strings as they are, Stringers by String(), the rest as %v."""
    if value is None or value is MISSING:
        return "<nil>" if value is None else "<no value>"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return vformat(value)


def _empty(value: object) -> bool:
    if is_struct(value):
        return False
    return not truth(value)


def _trunc(n: object, s: object) -> str:
    count, text = _i(n), _s(s)
    if count < 0 and len(text) + count > 0:
        return text[len(text) + count :]
    if count >= 0 and len(text) > count:
        return text[:count]
    return text


def _title(s: object) -> str:
    text = _s(s)
    return "".join(
        c.upper() if i == 0 or (not text[i - 1].isalnum() and text[i - 1] not in "'") else c
        for i, c in enumerate(text)
    )


def _str_list(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [to_string(v) for v in value if v is not None]
    if isinstance(value, str):
        return [value]
    return [to_string(value)]


def _indent(n: object, s: object) -> str:
    pad = " " * _i(n)
    return pad + _s(s).replace("\n", "\n" + pad)


def _hash(name: str) -> Func:
    return lambda s: hashlib.new(name, _s(s).encode()).hexdigest()


SPRIG: dict[str, Func] = {
    "lower": lambda s: _s(s).lower(),
    "upper": lambda s: _s(s).upper(),
    "title": _title,
    "trim": lambda s: _s(s).strip(),
    "trimAll": lambda cut, s: _s(s).strip(_s(cut)),
    "trimPrefix": lambda p, s: _s(s).removeprefix(_s(p)),
    "trimSuffix": lambda p, s: _s(s).removesuffix(_s(p)),
    "contains": lambda sub, s: _s(sub) in _s(s),
    "hasPrefix": lambda p, s: _s(s).startswith(_s(p)),
    "hasSuffix": lambda p, s: _s(s).endswith(_s(p)),
    "replace": lambda old, new, s: _s(s).replace(_s(old), _s(new)),
    "repeat": lambda n, s: _s(s) * max(_i(n), 0),
    "trunc": _trunc,
    "substr": lambda a, b, s: _s(s)[_i(a) : _i(b)] if _i(b) >= 0 else _s(s)[_i(a) :],
    "quote": lambda *a: " ".join(
        json.dumps(to_string(v), ensure_ascii=False) for v in a if v is not None
    ),
    "squote": lambda *a: " ".join(f"'{to_string(v)}'" for v in a if v is not None),
    "cat": lambda *a: " ".join(to_string(v) for v in a if v is not None),
    "indent": _indent,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "toString": to_string,
    "toJson": lambda v: json.dumps(v, separators=(",", ":"), default=vformat),
    "sha256sum": _hash("sha256"),
    "sha1sum": _hash("sha1"),
    "b64enc": lambda s: base64.b64encode(_s(s).encode()).decode(),
    "b64dec": lambda s: base64.b64decode(_s(s)).decode("utf-8", "replace"),
    "default": lambda d, *given: given[0] if given and not _empty(given[0]) else d,
    "empty": _empty,
    "coalesce": lambda *a: next((v for v in a if not _empty(v)), None),
    "ternary": lambda t, f, cond: t if truth(cond) else f,
    "list": lambda *a: list(a),
    "join": lambda sep, v: _s(sep).join(_str_list(v)),
    "splitList": lambda sep, s: _s(s).split(_s(sep)),
    "split": lambda sep, s: {f"_{i}": p for i, p in enumerate(_s(s).split(_s(sep)))},
    "first": lambda v: v[0] if isinstance(v, (list, tuple)) and v else None,
    "last": lambda v: v[-1] if isinstance(v, (list, tuple)) and v else None,
}
