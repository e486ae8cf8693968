"""Server-side apply: field sets, FieldsV1, merging, pruning, conflicts.

A field path is a tuple of FieldsV1 path elements: `f:<name>` for a struct or
map field, `k:{"key":value}` for an item of an associative list, `v:<json>` for
a set item, `i:<n>` for a list index. A field set is a Python set of paths;
a path is a member when that node itself is owned.

The algorithm follows kubelite.md ("Server-side apply") and the structured
merge-diff library it describes: merge the config into the live object, make
the config's fields the manager's new set, prune the fields the manager
stopped applying that no one else owns, then detect conflicts with other
managers on the fields whose value changes.

Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .schema import ANY, Shape

Path = tuple[str, ...]
FieldSet = set[Path]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def jcopy(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, scalars); much faster than deepcopy."""
    if isinstance(value, dict):
        return {k: jcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jcopy(v) for v in value]
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- shapes


def classify(shape: Shape | None, value: Any) -> str:
    """How a value is walked: leaf, struct, map, assoc (keyed list) or set."""
    if shape is None:
        shape = ANY
    if isinstance(value, dict):
        if shape.kind == "struct":
            return "leaf" if shape.atomic else "struct"
        if shape.kind == "map":
            return "leaf" if shape.atomic else "map"
        if shape.kind == "any":
            return "map"
        return "leaf"
    if isinstance(value, list):
        if shape.kind == "list":
            if shape.list_type == "map" and shape.keys:
                return "assoc"
            if shape.list_type == "set":
                return "set"
        return "leaf"
    return "leaf"


def child_shape(shape: Shape | None, name: str) -> Shape:
    if shape is None:
        return ANY
    return shape.child(name) or ANY


def item_pe(shape: Shape, item: Any, kind: str, index: int) -> str:
    """Path element of a list item (key fields sorted, protocol defaults to TCP)."""
    if kind == "set":
        return "v:" + _compact(item)
    if isinstance(item, dict):
        key = {}
        for k in shape.keys:
            if k in item:
                key[k] = item[k]
            elif k in shape.key_defaults:
                key[k] = shape.key_defaults[k]
        return "k:" + _compact(key)
    return f"i:{index}"


def _items(shape: Shape, value: list[Any], kind: str) -> list[tuple[str, Any]]:
    return [(item_pe(shape, it, kind, i), it) for i, it in enumerate(value)]


# --------------------------------------------------------------------------- field sets


def to_fieldset(
    value: Any, shape: Shape | None, path: Path = (), out: FieldSet | None = None
) -> FieldSet:
    """Fields a config sets: every leaf, atomic values as one leaf, list items as nodes."""
    if out is None:
        out = set()
    kind = classify(shape, value)
    if kind == "leaf":
        if path:
            out.add(path)
    elif kind in ("struct", "map"):
        for k, v in value.items():
            to_fieldset(v, child_shape(shape, k), (*path, "f:" + k), out)
    else:
        assert shape is not None
        for pe, item in _items(shape, value, kind):
            p = (*path, pe)
            out.add(p)
            if kind == "assoc":
                to_fieldset(item, shape.elem, p, out)
    return out


def all_paths(value: Any, shape: Shape | None, path: Path, out: FieldSet) -> None:
    """Every node of a value, containers included (for added/removed subtrees)."""
    kind = classify(shape, value)
    out.add(path)
    if kind in ("struct", "map"):
        for k, v in value.items():
            all_paths(v, child_shape(shape, k), (*path, "f:" + k), out)
    elif kind in ("assoc", "set"):
        assert shape is not None
        for pe, item in _items(shape, value, kind):
            all_paths(item, shape.elem if kind == "assoc" else None, (*path, pe), out)


@dataclass
class Comparison:
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(
    lhs: Any, rhs: Any, shape: Shape | None, path: Path = (), c: Comparison | None = None
) -> Comparison:
    """What changes from lhs to rhs, path by path."""
    if c is None:
        c = Comparison()
    if lhs is MISSING and rhs is MISSING:
        return c
    if lhs is MISSING:
        all_paths(rhs, shape, path, c.added)
        return c
    if rhs is MISSING:
        all_paths(lhs, shape, path, c.removed)
        return c
    kl, kr = classify(shape, lhs), classify(shape, rhs)
    if kl != kr or kl == "leaf":
        if lhs != rhs:
            c.modified.add(path)
        return c
    if kl in ("struct", "map"):
        for k in {**lhs, **rhs}:
            compare(
                lhs.get(k, MISSING),
                rhs.get(k, MISSING),
                child_shape(shape, k),
                (*path, "f:" + k),
                c,
            )
        return c
    assert shape is not None
    li = dict(_items(shape, lhs, kl))
    ri = dict(_items(shape, rhs, kl))
    sub = shape.elem if kl == "assoc" else None
    for pe in {**li, **ri}:
        compare(li.get(pe, MISSING), ri.get(pe, MISSING), sub, (*path, pe), c)
    return c


# --------------------------------------------------------------------------- merge


def merge(lhs: Any, rhs: Any, shape: Shape | None) -> Any:
    """lhs merged with rhs; rhs values win, keyed lists merge by key."""
    if rhs is MISSING:
        return lhs
    if lhs is MISSING:
        return jcopy(rhs)
    kl, kr = classify(shape, lhs), classify(shape, rhs)
    if kl != kr or kr == "leaf":
        return jcopy(rhs)
    if kr in ("struct", "map"):
        out = dict(lhs)
        for k, v in rhs.items():
            out[k] = merge(lhs.get(k, MISSING), v, child_shape(shape, k))
        return out
    assert shape is not None
    sub = shape.elem if kr == "assoc" else None
    litems = _items(shape, lhs, kr)
    ritems = _items(shape, rhs, kr)
    rindex = {pe: i for i, (pe, _) in enumerate(ritems)}
    lmap = dict(litems)
    result: list[Any] = []
    ri = 0

    def emit_r(j: int) -> None:
        pe, item = ritems[j]
        result.append(merge(lmap.get(pe, MISSING), item, sub))

    for pe, item in litems:
        if pe not in rindex:
            result.append(item)
            continue
        pos = rindex[pe]
        if pos >= ri:
            for j in range(ri, pos + 1):
                emit_r(j)
            ri = pos + 1
    for j in range(ri, len(ritems)):
        emit_r(j)
    return result


# --------------------------------------------------------------------------- navigation


def _match(shape: Shape | None, lst: list[Any], pe: str) -> int:
    if pe.startswith("i:"):
        i = int(pe[2:])
        return i if i < len(lst) else -1
    kind = "set" if pe.startswith("v:") else "assoc"
    for i, item in enumerate(lst):
        if shape is not None and item_pe(shape, item, kind, i) == pe:
            return i
    return -1


def remove_path(obj: Any, path: Path, shape: Shape | None) -> None:
    """Remove one path from obj in place; empty containers left behind go too."""
    stack: list[tuple[Any, str, Shape | None]] = []
    cur: Any = obj
    sh = shape
    for pe in path:
        if isinstance(cur, dict) and pe.startswith("f:"):
            stack.append((cur, pe, sh))
            name = pe[2:]
            if name not in cur:
                return
            cur = cur[name]
            sh = child_shape(sh, name)
        elif isinstance(cur, list):
            idx = _match(sh, cur, pe)
            if idx < 0:
                return
            stack.append((cur, pe, sh))
            cur = cur[idx]
            sh = sh.elem if sh is not None and pe.startswith("k:") else None
        else:
            return
    first = True
    while stack:
        parent, pe, psh = stack.pop()
        if not first and not (isinstance(cur, dict | list) and len(cur) == 0):
            break
        if not first and len(stack) < 1:
            break  # keep top-level fields such as spec
        if isinstance(parent, dict):
            parent.pop(pe[2:], None)
        else:
            idx = _match(psh, parent, pe)
            if idx >= 0:
                del parent[idx]
        first = False
        cur = parent


def format_path(path: Path) -> str:
    """Human form of a path, as in conflict messages: .spec.containers[name="x"].image"""
    out = []
    for pe in path:
        kind, body = pe[:2], pe[2:]
        if kind == "f:":
            out.append("." + body)
        elif kind == "k:":
            key = json.loads(body)
            out.append("[" + ",".join(f"{k}={_compact(key[k])}" for k in sorted(key)) + "]")
        elif kind == "v:":
            out.append("[=" + body + "]")
        else:
            out.append("[" + body + "]")
    return "".join(out)


# --------------------------------------------------------------------------- FieldsV1


def encode_fields(fs: FieldSet) -> dict[str, Any]:
    """A field set in FieldsV1 form."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for p in fs:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        members.add(id(node))

    def fin(node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node and id(node) in members:
            out["."] = {}
        for k in sorted(node):
            out[k] = fin(node[k])
        return out

    return fin(root)


def decode_fields(
    tree: dict[str, Any] | None, prefix: Path = (), out: FieldSet | None = None
) -> FieldSet:
    """The field set a FieldsV1 tree describes."""
    if out is None:
        out = set()
    for k, v in (tree or {}).items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        p = (*prefix, k)
        if not v:
            out.add(p)
        else:
            decode_fields(v, p, out)
    return out


# --------------------------------------------------------------------------- managers


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str
    fields: FieldSet

    def ident(self) -> tuple[str, str, str, str]:
        av = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, self.subresource, av)

    def printable(self) -> str:
        s = json.dumps(self.manager)
        if self.subresource:
            s += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s


def decode_managed(raw: list[dict[str, Any]] | None) -> list[Entry]:
    out = []
    for m in raw or []:
        if not m or ("manager" not in m and "fieldsV1" not in m):
            continue
        out.append(
            Entry(
                manager=m.get("manager", ""),
                operation=m.get("operation", "Update"),
                api_version=m.get("apiVersion", ""),
                subresource=m.get("subresource", ""),
                time=m.get("time", ""),
                fields=decode_fields(m.get("fieldsV1")),
            )
        )
    return out


def encode_managed(entries: list[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        d: dict[str, Any] = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
        }
        if e.time:
            d["time"] = e.time
        d["fieldsType"] = "FieldsV1"
        d["fieldsV1"] = encode_fields(e.fields)
        if e.subresource:
            d["subresource"] = e.subresource
        out.append(d)
    return out


class ApplyConflict(Exception):
    """Another manager owns fields whose value the apply changes."""

    def __init__(self, conflicts: list[tuple[Entry, Path]]) -> None:
        self.conflicts = conflicts
        if len(conflicts) == 1:
            e, p = conflicts[0]
            body = f"conflict with {e.printable()}: {format_path(p)}"
            msg = f"Apply failed with 1 conflict: {body}"
        else:
            by: dict[str, list[Path]] = {}
            for e, p in conflicts:
                by.setdefault(e.printable(), []).append(p)
            lines = []
            for mgr in sorted(by):
                lines.append(f"conflicts with {mgr}:")
                lines.extend(f"- {format_path(p)}" for p in sorted(by[mgr]))
            msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        super().__init__(msg)
        self.message = msg

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {e.printable()}",
                "field": format_path(p),
            }
            for e, p in self.conflicts
        ]


@dataclass
class Scope:
    """Which paths a write may touch: all but ignored prefixes, or only some."""

    ignored: tuple[Path, ...] = ()
    only: tuple[Path, ...] = ()

    def allows(self, p: Path) -> bool:
        for ig in self.ignored:
            if p[: len(ig)] == ig:
                return False
        if self.only:
            # strictly below one of the allowed roots (the root node itself is not tracked)
            return any(len(p) > len(o) and p[: len(o)] == o for o in self.only)
        return True

    def filter(self, fs: FieldSet) -> FieldSet:
        return {p for p in fs if p and self.allows(p)}


#: never tracked in managedFields (kubelite.md)
STRIPPED: tuple[Path, ...] = (
    ("f:apiVersion",),
    ("f:kind",),
    ("f:metadata", "f:name"),
    ("f:metadata", "f:namespace"),
    ("f:metadata", "f:generateName"),
    ("f:metadata", "f:uid"),
    ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:generation"),
    ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:deletionTimestamp"),
    ("f:metadata", "f:deletionGracePeriodSeconds"),
    ("f:metadata", "f:managedFields"),
    ("f:metadata", "f:selfLink"),
)


def _is_key_field(p: Path) -> bool:
    """A key field of a keyed list item: it goes only with its item."""
    if len(p) < 2 or not p[-2].startswith("k:") or not p[-1].startswith("f:"):
        return False
    return p[-1][2:] in json.loads(p[-2][2:])


def _owned_prefixes(entries: list[Entry]) -> set[Path]:
    out: set[Path] = set()
    for e in entries:
        for p in e.fields:
            for i in range(1, len(p) + 1):
                out.add(p[:i])
    return out


def apply(
    live: dict[str, Any],
    config: dict[str, Any],
    shape: Shape,
    entries: list[Entry],
    manager: str,
    api_version: str,
    subresource: str,
    force: bool,
    scope: Scope,
    now: str,
) -> tuple[dict[str, Any], list[Entry]]:
    """Apply config for manager onto live; returns the new object and managers.

    Raises ApplyConflict when another manager owns a changed field and not force.
    """
    merged = merge(live, config, shape)
    new_set = scope.filter(to_fieldset(config, shape))
    entries = [Entry(**{**e.__dict__, "fields": set(e.fields)}) for e in entries]
    mine = None
    for e in entries:
        if e.manager == manager and e.operation == "Apply" and e.subresource == subresource:
            mine = e
            break
    last: FieldSet = set(mine.fields) if mine else set()
    if mine is None:
        mine = Entry(manager, "Apply", api_version, subresource, now, set())
        entries.append(mine)
    old_mine = set(mine.fields)
    mine.fields = new_set
    mine.api_version = api_version
    # prune what the manager stopped applying and nobody else owns
    owned = _owned_prefixes(entries)
    for p in sorted(last - new_set, key=len, reverse=True):
        if p in owned or _is_key_field(p):
            continue
        remove_path(merged, p, shape)
    c = compare(live, merged, shape)
    changed = scope.filter(c.changed())
    removed = scope.filter(c.removed)
    conflicts: list[tuple[Entry, Path]] = []
    for e in entries:
        if e is mine:
            continue
        for p in sorted(e.fields & changed):
            conflicts.append((e, p))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for e in entries:
        if e is mine:
            continue
        before = set(e.fields)
        e.fields -= changed
        e.fields -= removed
        if e.fields != before:
            pass  # ownership moves without touching the other manager's time
    if mine.fields != old_mine:
        mine.time = now
    entries = [e for e in entries if e.fields]
    return merged, entries


def update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    shape: Shape,
    entries: list[Entry],
    manager: str,
    api_version: str,
    subresource: str,
    scope: Scope,
    now: str,
) -> list[Entry]:
    """Managers after an Update operation (create, PUT, non-apply PATCH) by manager."""
    c = compare(live if live is not None else {}, new, shape)
    changed = scope.filter(c.changed())
    removed = scope.filter(c.removed)
    # struct nodes are not tracked by updates; keyed items and maps are
    changed = {p for p in changed if _tracked_node(new, p, shape)}
    entries = [Entry(**{**e.__dict__, "fields": set(e.fields)}) for e in entries]
    mine = None
    for e in entries:
        if e.manager == manager and e.operation == "Update" and e.subresource == subresource:
            if e.api_version == api_version:
                mine = e
                break
    for e in entries:
        if e is mine:
            continue
        e.fields -= changed
        e.fields -= removed
    if mine is None:
        mine = Entry(manager, "Update", api_version, subresource, now, set())
        entries.append(mine)
    before = set(mine.fields)
    mine.fields = (mine.fields - removed) | changed
    if mine.fields != before:
        mine.time = now
    return [e for e in entries if e.fields]


def _tracked_node(obj: Any, path: Path, shape: Shape | None) -> bool:
    if path and not path[-1].startswith("f:"):
        return True  # list items are always tracked
    cur: Any = obj
    sh = shape
    for pe in path:
        if isinstance(cur, dict) and pe.startswith("f:"):
            cur = cur.get(pe[2:], MISSING)
            sh = child_shape(sh, pe[2:])
        elif isinstance(cur, list):
            idx = _match(sh, cur, pe)
            if idx < 0:
                return True
            cur = cur[idx]
            sh = sh.elem if sh is not None and pe.startswith("k:") else None
        else:
            return True
    kind = classify(sh, cur)
    if kind == "struct":
        return False
    if kind in ("assoc", "set") and path[-1].startswith("f:"):
        return False
    return True
