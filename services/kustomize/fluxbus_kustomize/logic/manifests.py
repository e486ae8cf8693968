"""Reading Kubernetes YAML the way the Go tooling does.

PyYAML's SafeLoader follows YAML 1.1 to the letter, which the Kubernetes
tooling (go-yaml via sigs.k8s.io/yaml) does not: a plain `2024-01-01` would
become a `datetime.date` (and then fail JSON encoding for the API server), a
plain `1:30` the integer 90, and a plain `=` a constructor error. This loader
keeps those as strings and reads `1e3` as a float, like Go. Booleans keep the
YAML 1.1 spellings (`yes`, `on`, …), as go-yaml v2 does.

`split_documents` cuts kustomize's multi-document output into per-object
texts, so post-build substitution can work on each object's YAML exactly as
kustomize emitted it (quoting included), the way Flux does.

`load` and `load_all` are bounded (`fluxbus_common.safeyaml`): an alias bomb,
a too deep or too large text raises `YamlLimitError` (a `yaml.YAMLError`
naming the line and the limit) before anything expands it.

Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from fluxbus_common import safeyaml
from fluxbus_common.safeyaml import DEFAULT_LIMITS, YamlLimits

_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.VERBOSE,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)[eE][-+]?[0-9]+
    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)
_DROPPED_TAGS = {
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it (about 10x faster); the scalar
resolution below is Python either way, so both read documents the same."""


# mypy cannot subclass a base chosen at run time (CSafeLoader exists only with libyaml)
class ManifestLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with the Kubernetes tooling's scalar resolution (see the module doc)."""


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ManifestLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
ManifestLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """Parse one YAML document within `limits` (raises yaml.YAMLError, YamlLimitError
    included)."""
    return safeyaml.load(text, ManifestLoader, limits)


def load_all(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> list[Any]:
    """Parse every document of a YAML stream within `limits` (raises yaml.YAMLError,
    YamlLimitError included)."""
    return safeyaml.load_all(text, ManifestLoader, limits)


_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)


def split_documents(text: str) -> list[str]:
    """Return the texts of the non-empty documents of a YAML stream.

    Cuts at `---` lines; inside a block scalar such a line would be indented,
    so kustomize's output never has one that is not a separator.
    """
    return [doc for doc in _DOC_SEPARATOR.split(text) if doc.strip()]
