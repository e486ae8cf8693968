"""Kubernetes label and field selectors: one parser for kubelite's list/watch
queries, the kustomize service's drift-ignore targets and Receiver filters.

`parse_label_selector("app=web,tier in (a,b),!legacy")` returns a predicate
over a label map; `parse_field_selector` one over whole objects;
`selector_string` turns a LabelSelector (matchLabels / matchExpressions)
into the string form.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed."""


def _split_terms(sel: str) -> list[str]:
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur:
        terms.append("".join(cur).strip())
    return [t for t in terms if t]


_SET_RX = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


LabelPredicate = Callable[[Mapping[str, str]], bool]
ObjectPredicate = Callable[[dict[str, Any]], bool]


def _label_term(term: str) -> LabelPredicate:
    m = _SET_RX.match(term)
    if m:
        key, op = m.group(1), m.group(2)
        values = {v.strip() for v in m.group(3).split(",")} - {""}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if "!=" in term:
        key, val = (x.strip() for x in term.split("!=", 1))
        return lambda labels: labels.get(key) != val
    if "=" in term:
        key, val = (x.strip() for x in re.split("==|=", term, maxsplit=1))
        return lambda labels: labels.get(key) == val
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    key = term.strip()
    if not key or " " in key:
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: key in labels


def parse_label_selector(sel: str | None) -> LabelPredicate:
    """A predicate over labels for a selector string (=, ==, !=, in, notin, exists, !exists)."""
    preds = [_label_term(t) for t in _split_terms(sel or "")]
    return lambda labels: all(p(labels) for p in preds)


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _field_term(term: str, sel: str) -> ObjectPredicate:
    if "!=" in term:
        f, v = (x.strip() for x in term.split("!=", 1))
        return lambda obj: _field_value(obj, f) != v
    if "=" in term:
        f, v = (x.strip() for x in re.split("==|=", term, maxsplit=1))
        return lambda obj: _field_value(obj, f) == v
    raise SelectorError(f"invalid selector: {sel!r}; can't understand {term!r}")


def parse_field_selector(sel: str | None) -> ObjectPredicate:
    """A predicate over objects for a field selector (=, ==, !=)."""
    preds = [_field_term(t, sel or "") for t in _split_terms(sel or "")]
    return lambda obj: all(p(obj) for p in preds)


def selector_string(sel: Any) -> str:
    """A LabelSelector (matchLabels / matchExpressions) as a selector string."""
    if not isinstance(sel, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), e.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
