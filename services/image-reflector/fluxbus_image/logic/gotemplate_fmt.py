"""Go's value model for templates over Python data: printing (`fmt` %v and printf), truth,
map key order and type names.

Pure: no I/O.

Python stands in for Go values: `str`, `int`, `float`, `bool`, `None` (nil),
`list`/`tuple` (slices), `dict` (maps) and any other object (a struct whose
exported fields are its capitalised attributes). An object may declare
`__go_type__` (its Go type name in messages, e.g. `"update.Result"`),
`__go_embedded__` (attribute names of embedded structs whose fields are
promoted) and a `String()` method (a `fmt.Stringer`). `MISSING` is Go's
invalid value: what a missing map key evaluates to; it prints `<no value>`.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "MISSING",
    "go_format_float",
    "go_quote",
    "go_type",
    "is_struct",
    "printf",
    "sorted_items",
    "sprint",
    "sprintln",
    "struct_fields",
    "truth",
    "vformat",
]


class _Missing:
    """Go's invalid reflect.Value."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def is_struct(value: object) -> bool:
    """Whether a Python value plays a Go struct."""
    return not isinstance(value, (str, int, float, bool, list, tuple, dict, _Missing)) and (
        value is not None
    )


def go_type(value: object) -> str:
    """The Go type name used in messages and `%T`."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return str(getattr(type(value), "__go_type__", type(value).__name__))


def struct_fields(value: object) -> list[tuple[str, object]]:
    """The fields of a struct in declaration order (dataclass fields, else public attributes)."""
    if dataclasses.is_dataclass(value):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    return [(k, v) for k, v in vars(value).items() if not k.startswith("_")]


def truth(value: object) -> bool:
    """Go's template truth: false, 0, nil, empty string/slice/map and missing are false."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True  # structs are always true


def _key(value: object) -> tuple[Any, ...]:
    """Sort key of Go's fmtsort: numbers, strings, false<true, structs field by field."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value.encode())
    if is_struct(value):
        return (4, tuple(_key(v) for _, v in struct_fields(value)))
    return (5, repr(value))


def sorted_items(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """A map's items in the order Go prints and ranges over them."""
    return sorted(mapping.items(), key=lambda kv: _key(kv[0]))


def go_format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, verb, prec, 64) for verbs e, f, g."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if verb == "f":
        if prec < 0:
            text = format(decimal.Decimal(repr(f)), "f")
            return text
        return f"{f:.{prec}f}"
    if verb == "e":
        if prec < 0:
            digits, exp = _shortest(f)
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            return ("-" if f < 0 or math.copysign(1, f) < 0 else "") + mant + _exp(exp)
        text = f"{f:.{prec}e}"
        mant, _, e = text.partition("e")
        return mant + _exp(int(e))
    # %g: the shortest form switches to an exponent below 1e-4 and from 1e6 (Go's eprec 6)
    digits, exp = _shortest(f)
    sign = "-" if math.copysign(1, f) < 0 else ""
    if prec >= 0:
        text = f"{abs(f):.{max(prec, 1)}g}"
        if "e" in text:
            mant, _, e = text.partition("e")
            text = mant + _exp(int(e))
        return sign + text
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return sign + mant + _exp(exp)
    if exp < 0:
        return sign + "0." + "0" * (-exp - 1) + digits
    if exp + 1 >= len(digits):
        return sign + digits + "0" * (exp + 1 - len(digits))
    return sign + digits[: exp + 1] + "." + digits[exp + 1 :]


def _shortest(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and its decimal exponent."""
    if f == 0:
        return "0", 0
    _, digit_tuple, exponent = decimal.Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    return digits, len(digits) + exponent - 1


def _exp(exp: int) -> str:
    return f"e{'-' if exp < 0 else '+'}{abs(exp):02d}"


_CONTROL_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """strconv.Quote."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _CONTROL_ESCAPES:
            out.append(_CONTROL_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _stringer(value: object) -> Callable[[], object] | None:
    method = getattr(value, "String", None) if is_struct(value) else None
    return method if callable(method) else None


def vformat(value: object, plus: bool = False) -> str:
    """fmt's %v (and %+v with field names)."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(vformat(v, plus) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted_items(value)
        return "map[" + " ".join(f"{vformat(k, plus)}:{vformat(v, plus)}" for k, v in items) + "]"
    stringer = _stringer(value)
    if stringer is not None:
        return str(stringer())
    fields = struct_fields(value)
    if plus:
        return "{" + " ".join(f"{k}:{vformat(v, plus)}" for k, v in fields) + "}"
    return "{" + " ".join(vformat(v, plus) for _, v in fields) + "}"


def sprint(args: Sequence[object]) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(vformat(arg))
    return "".join(out)


def sprintln(args: Sequence[object]) -> str:
    """fmt.Sprintln: operands separated by spaces, then a newline."""
    return " ".join(vformat(a) for a in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.)?", re.DOTALL)


def _bad(verb: str, arg: object) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={vformat(arg)})"


def _format_one(verb: str, flags: str, prec: int | None, arg: object) -> str:
    """One verb applied to one operand, before padding."""
    if verb == "v":
        return vformat(arg, plus="+" in flags)
    if verb == "T":
        return go_type(arg)
    if (isinstance(arg, (list, tuple)) and verb not in ("s", "q", "x", "X")) or (
        isinstance(arg, (list, tuple)) and verb in ("s", "q") and arg
    ):
        return "[" + " ".join(_format_one(verb, flags, prec, a) for a in arg) + "]"
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb == "t" else _bad(verb, arg)
    if isinstance(arg, int):
        sign = "+" if "+" in flags and arg >= 0 else (" " if " " in flags and arg >= 0 else "")
        if verb == "d":
            return sign + str(arg)
        if verb in ("x", "X", "o", "b"):
            prefix = {"x": "0x", "X": "0X", "o": "0", "b": ""}[verb] if "#" in flags else ""
            return ("-" if arg < 0 else sign) + prefix + format(abs(arg), verb)
        if verb == "c":
            return chr(arg)
        if verb == "q":
            return "'" + go_quote(chr(arg))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        if verb in ("e", "f", "g", "E", "F", "G", "s"):
            return _bad(verb, arg)
        return _bad(verb, arg)
    if isinstance(arg, float):
        if verb in ("e", "f", "g", "E", "F", "G"):
            text = go_format_float(arg, verb.lower(), -1 if prec is None else prec)
            if verb.lower() == "f" and prec is None:
                text = f"{arg:.6f}"
            if verb.lower() == "e" and prec is None:
                text = go_format_float(arg, "e", 6)
            sign = "+" if "+" in flags and arg >= 0 else ""
            return sign + (text.upper() if verb.isupper() else text)
        return _bad(verb, arg)
    string: str | None = None
    if isinstance(arg, str):
        string = arg
    elif _stringer(arg) is not None:
        string = vformat(arg)
    if string is not None:
        if verb == "s":
            return string if prec is None else string[:prec]
        if verb == "q":
            return go_quote(string)
        if verb in ("x", "X"):
            hexa = string.encode().hex()
            return hexa.upper() if verb == "X" else hexa
        return _bad(verb, arg)
    if verb == "s" and (is_struct(arg) or isinstance(arg, dict)):
        return vformat(arg)
    return _bad(verb, arg)


def printf(fmt: str, args: Sequence[object]) -> str:
    """fmt.Sprintf for the verbs commit messages use: v s d q x X t c f e g o b T and %%."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width_s, prec_s, verb = m.groups()
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        if width_s == "*":
            star = args[argi] if argi < len(args) else None
            width = star if isinstance(star, int) else None
            argi += 1
        elif width_s:
            width = int(width_s)
        prec: int | None = None
        if prec_s == "*":
            star = args[argi] if argi < len(args) else None
            prec = star if isinstance(star, int) else None
            argi += 1
        elif prec_s is not None:
            prec = int(prec_s or "0")
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        text = _format_one(verb, flags, prec, args[argi])
        argi += 1
        if width is not None and len(text) < width:
            if "-" in flags:
                text = text.ljust(width)
            elif "0" in flags and verb in "dxXobeEfFgG" and text[:1] in "+- ":
                text = text[0] + text[1:].rjust(width - 1, "0")
            elif "0" in flags and verb in "dxXobeEfFgG":
                text = text.rjust(width, "0")
            else:
                text = text.rjust(width)
        out.append(text)
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type(a)}={vformat(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
