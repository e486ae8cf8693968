"""Non-apply patches: JSON merge patch, JSON patch and strategic merge patch.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from .schema import Shape


class PatchError(Exception):
    """The patch cannot be applied (bad operation, failed test, bad path)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"missing path segment {t!r}")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError) as e:
                raise PatchError(f"bad list index {t!r}") from e
        else:
            raise PatchError(f"cannot descend into {t!r}")
    return cur


def _get(doc: Any, pointer: str) -> Any:
    return _parent(doc, _split(pointer))


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _split(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError as e:
                raise PatchError(f"bad list index {last!r}") from e
            if i < 0 or i > len(parent):
                raise PatchError(f"list index {i} out of range")
            parent.insert(i, value)
    else:
        raise PatchError(f"cannot add at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _split(pointer)
    if not tokens:
        raise PatchError("cannot remove the document root")
    parent = _parent(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        del parent[last]
    elif isinstance(parent, list):
        try:
            del parent[int(last)]
        except (ValueError, IndexError) as e:
            raise PatchError(f"bad list index {last!r}") from e
    else:
        raise PatchError(f"cannot remove {pointer!r}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("each JSON patch operation needs an 'op'")
        kind = op["op"]
        path = op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _split(path) else doc
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _get(doc, op["from"])
            doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected op {kind!r}")
    return doc


def strategic_merge_patch(target: Any, patch: Any, shape: Shape | None) -> Any:
    """Strategic merge patch driven by the patch strategy and merge keys of the schema."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target)
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in v]
            continue
        sub = shape.child(k) if shape is not None else None
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            res = strategic_merge_patch(out.get(k), v, sub)
            if res is None:
                out.pop(k, None)
            else:
                out[k] = res
        elif isinstance(v, list) and sub is not None and sub.kind == "list" and sub.patch_merge:
            out[k] = _merge_list(out.get(k), v, sub)
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = _reorder(out[name], v, shape.child(name) if shape else None)
    return out


def _merge_list(current: Any, patch: list[Any], shape: Shape) -> list[Any]:
    cur = list(current) if isinstance(current, list) else []
    key = shape.merge_key
    if not key:
        for item in patch:
            if item not in cur:
                cur.append(copy.deepcopy(item))
        return cur
    for item in patch:
        if not isinstance(item, dict):
            continue
        directive = item.get("$patch")
        idx = next(
            (i for i, c in enumerate(cur) if isinstance(c, dict) and c.get(key) == item.get(key)),
            -1,
        )
        if directive == "delete":
            if idx >= 0:
                del cur[idx]
            continue
        if directive == "replace":
            return [x for x in patch if not (isinstance(x, dict) and x.get("$patch"))]
        if idx >= 0:
            cur[idx] = strategic_merge_patch(cur[idx], item, shape.elem)
        else:
            cur.append(strategic_merge_patch({}, item, shape.elem))
    return cur


def _reorder(items: list[Any], order: list[Any], shape: Shape | None) -> list[Any]:
    key = shape.merge_key if shape is not None else None

    def ident(x: Any) -> Any:
        if key and isinstance(x, dict):
            return x.get(key)
        return repr(x)

    pos = {ident(o): i for i, o in enumerate(order)}
    return sorted(items, key=lambda x: pos.get(ident(x), len(pos)))
