"""Bounded YAML: refuse a "billion laughs" (alias bomb), a too deep or too large
document before anything expands it.

Pure: no I/O. The caller reads the text; this module only parses it.

Every parser of repository content in the services goes through here: the
kustomize service's pre-scan of the files kustomize will read (so a bomb is
refused before `kubectl kustomize` expands it into gigabytes), its own reads
of kustomization files and of kustomize's output, and the reparse after
post-build substitution.

`check(text, limits)` walks only the parser's *event stream* (no composer, no
constructor), so its work and memory are linear in the input whatever the
aliases say. It keeps, for every anchor, the number of nodes its value
expands to, and adds that number at every alias: the total is exactly the
node count a loader that copies aliases (go-yaml, kustomize) would build.
It refuses (`YamlLimitError`, naming the line and the limit):

- aliases that expand to more nodes than `max_alias_nodes` and more than
  `max_alias_ratio` times the document's own nodes (a hand-written manifest
  reusing a block a few times stays far below both; the 447-byte "9 × 9
  laughs" expands to ~4·10⁸ nodes);
- an alias to an anchor whose value is still open (a recursive structure:
  infinite once expanded; go-yaml refuses it too);
- nesting deeper than `max_depth` (PyYAML's composer recurses per level; the
  Python stack would overflow first, with a less useful message);
- text longer than `max_bytes`.

`load` / `load_all` check, then load with the caller's loader class (PyYAML
shares alias targets, so once checked the load itself is cheap). The event
scan uses libyaml when PyYAML was built with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "DEFAULT_LIMITS",
    "YamlLimitError",
    "YamlLimits",
    "check",
    "load",
    "load_all",
]

_EventLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when available (the scan reads events only, so both agree)."""


class YamlLimitError(yaml.YAMLError):
    """The YAML is over a limit; `line` is 1-based (0 when unknown), `limit` names it.

    A `yaml.YAMLError`, so a caller that reports "invalid YAML" still catches it;
    its text names the line and the limit, e.g.
    `line 6: aliases expand to more than 10000 nodes (alias expansion limit)`.
    """

    def __init__(self, line: int, problem: str, limit: str) -> None:
        self.line = line
        self.problem = problem
        self.limit = limit
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{problem} ({limit})")


@dataclass(frozen=True)
class YamlLimits:
    """What one YAML text (a file, a stream of documents) may hold."""

    max_alias_nodes: int = 10_000
    """Nodes aliases may add by expansion (always allowed up to this many)..."""
    max_alias_ratio: float = 1.0
    """...or up to this many times the nodes written out (a large file reusing anchors
    a lot), whichever is larger: a YAML bomb exceeds both by orders of magnitude."""
    max_depth: int = 256
    """Nesting of collections: deeper than any Kubernetes object or CRD schema, well
    inside the Python stack PyYAML's composer recurses on."""
    max_bytes: int = 256 * 1024 * 1024
    """Length of the text (characters, or bytes when given bytes): the render output
    cap, far above any manifest."""

    def __post_init__(self) -> None:
        if (
            self.max_alias_nodes < 0
            or self.max_alias_ratio < 0
            or self.max_depth < 1
            or self.max_bytes < 1
        ):
            raise ValueError(f"YAML limits must be positive: {self}")


DEFAULT_LIMITS = YamlLimits()


def check(text: str | bytes, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Raise YamlLimitError when `text` is over `limits`; return None otherwise.

    Raises yaml.YAMLError when the text does not parse before a limit is reached
    (callers that only screen for bombs may ignore that and let the real parser
    report it).
    """
    if len(text) > limits.max_bytes:
        raise YamlLimitError(
            0, f"{len(text)} bytes is more than {limits.max_bytes}", "YAML size limit"
        )
    if (b"*" not in text) if isinstance(text, bytes) else ("*" not in text):
        if _depth_cannot_exceed(text, limits.max_depth):
            return  # no alias and too short to nest that deep: nothing to expand
    _scan(text, limits)


def _depth_cannot_exceed(text: str | bytes, depth: int) -> bool:
    """Whether `text` is too short to nest `depth` collections (each needs a character)."""
    return len(text) <= depth


def _scan(text: str | bytes, limits: YamlLimits) -> None:
    # sizes[i]: nodes under the i-th open collection so far (itself included);
    # anchors: expanded node count of each anchor whose value is complete;
    # open_anchors: anchors whose collection is still open (an alias to one recurses).
    sizes: list[int] = []
    names: list[str | None] = []
    anchors: dict[str, int] = {}
    open_anchors: set[str] = set()
    written = 0
    expanded = 0
    loader = _EventLoader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                anchors.clear()  # anchors are per document
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size = sizes.pop()
                name = names.pop()
                if name is not None:
                    anchors[name] = size
                    open_anchors.discard(name)
                if sizes:
                    sizes[-1] += size
                continue
            if isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise YamlLimitError(
                        _line(event),
                        f"alias *{event.anchor} refers to a value that contains it",
                        "recursive alias",
                    )
                n = anchors.get(event.anchor or "", 1)  # unknown: the loader reports it
                expanded += n
                allowed = max(limits.max_alias_nodes, limits.max_alias_ratio * written)
                if expanded > allowed:
                    raise YamlLimitError(
                        _line(event),
                        f"aliases expand to more than {int(allowed)} nodes",
                        "alias expansion limit",
                    )
                if sizes:
                    sizes[-1] += n
                continue
            if isinstance(event, yaml.CollectionStartEvent):
                if len(sizes) >= limits.max_depth:
                    raise YamlLimitError(
                        _line(event),
                        f"nesting deeper than {limits.max_depth} levels",
                        "YAML depth limit",
                    )
                written += 1
                sizes.append(1)
                names.append(event.anchor)
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
                continue
            if isinstance(event, yaml.ScalarEvent):
                written += 1
                if event.anchor is not None:
                    anchors[event.anchor] = 1
                if sizes:
                    sizes[-1] += 1
    finally:
        loader.dispose()


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def load(
    text: str | bytes,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    limits: YamlLimits = DEFAULT_LIMITS,
) -> Any:
    """Return the single document of `text`, parsed with `loader` once it passed `check`.

    Raises YamlLimitError (over a limit) or yaml.YAMLError (does not parse).
    """
    check(text, limits)
    return yaml.load(text, Loader=loader)


def load_all(
    text: str | bytes,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    limits: YamlLimits = DEFAULT_LIMITS,
) -> list[Any]:
    """Return every document of `text`, parsed with `loader` once it passed `check`.

    Raises YamlLimitError (over a limit) or yaml.YAMLError (does not parse).
    """
    check(text, limits)
    return list(yaml.load_all(text, Loader=loader))
