"""Go duration strings (`1m30s`, `500ms`, `1.5h`) as Flux writes them.

`parse_duration` follows Go's `time.ParseDuration`: an optional sign, then one
or more decimal numbers (with optional fraction) each followed by a unit
(`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`); the bare string `0` is zero.
`format_duration` follows Go's `time.Duration.String` (`90` → `1m30s`).
Arithmetic is done in integer nanoseconds, as Go does, so values round-trip.

Pure: no I/O.
"""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1_000 * NANOSECOND
MILLISECOND = 1_000 * MICROSECOND
SECOND = 1_000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

MAX_NANOSECONDS = 2**63 - 1
"""Go's time.Duration is an int64 of nanoseconds; longer strings are invalid."""

_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,  # U+00B5 micro sign
    "μs": MICROSECOND,  # U+03BC Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DIGITS = "0123456789"


def _invalid(s: str) -> ValueError:
    return ValueError(f'invalid duration "{s}"')


def parse_duration_ns(s: str) -> int:
    """Return the duration `s` in integer nanoseconds.

    Raises ValueError `invalid duration "<s>"` for anything Go's
    time.ParseDuration rejects (empty string, missing or unknown unit,
    stray characters, overflow of int64 nanoseconds).
    """
    if not isinstance(s, str):
        raise _invalid(str(s))
    orig = s
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise _invalid(orig)
    total = 0
    while s:
        # integer part
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and s[j] in _DIGITS:
                j += 1
            frac, s = s[:j], s[j:]
        if not whole and not frac:
            raise _invalid(orig)  # no digits at all, e.g. ".s" or "s"
        k = 0
        while k < len(s) and s[k] != "." and s[k] not in _DIGITS:
            k += 1
        unit_name, s = s[:k], s[k:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise _invalid(orig)  # missing or unknown unit
        value = int(whole or "0") * unit
        if frac:
            # Go truncates the fractional part towards zero in nanoseconds.
            value += int(frac) * unit // 10 ** len(frac)
        total += value
        if total > MAX_NANOSECONDS + (1 if negative else 0):
            raise _invalid(orig)
    return -total if negative else total


def parse_duration(s: str) -> float:
    """Return the Go duration string `s` in seconds (a float).

    Raises ValueError `invalid duration "<s>"` when `s` is not a Go duration.
    """
    return parse_duration_ns(s) / SECOND


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Format the low `prec` digits of v as a fraction without trailing zeros.

    Returns (".123" or "", v // 10**prec), as Go's fmtFrac does.
    """
    digits = []
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        v //= 10
    frac = "." + "".join(reversed(digits)) if printed else ""
    return frac, v


def format_duration_ns(ns: int) -> str:
    """Return integer nanoseconds as Go's Duration.String() would (`1h0m0s`, `1.5s`, `300ms`)."""
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            frac, whole = _fmt_frac(u, 3)
            return f"{sign}{whole}{frac}µs"
        frac, whole = _fmt_frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _fmt_frac(u, 9)
    out = f"{secs % 60}{frac}s"
    mins = secs // 60
    if mins > 0:
        out = f"{mins % 60}m{out}"
        hours = mins // 60
        if hours > 0:
            out = f"{hours}h{out}"
    return sign + out


def format_duration(seconds: float) -> str:
    """Return `seconds` as a Go duration string, e.g. 90 → "1m30s", 0.3 → "300ms".

    The value is rounded to whole nanoseconds first.
    """
    return format_duration_ns(round(seconds * SECOND))
