"""Every kind fluxbus knows, how users name them, and reading/writing manifests.

- `KINDS`, `resolve_kind(name)` (plural, singular, short name or Kind, any case,
  optionally `<plural>.<group>`) and `kind_for(apiVersion, kind)`.
- `parse_object(doc)`, `load_documents(text, source)` and `dump_object(obj)`:
  Flux YAML in, validated models out, and back to the exact same dict.

Errors read like `apps.yaml: document 2: spec.interval: invalid duration "5 minutes"`.

Pure: no I/O (YAML is parsed from a string the caller read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import yaml
from pydantic import BaseModel, ValidationError

from fluxbus_common import safeyaml
from fluxbus_common.api.compat import not_served, not_served_message
from fluxbus_common.api.core import ConfigMap, Secret
from fluxbus_common.api.helm import HELM_GROUP, HelmChart, HelmRelease, HelmRepository
from fluxbus_common.api.image import (
    IMAGE_GROUP,
    ImagePolicy,
    ImageRepository,
    ImageUpdateAutomation,
)
from fluxbus_common.api.kustomize import KUSTOMIZE_GROUP, Kustomization
from fluxbus_common.api.meta import InvalidObject, KubeObject, ToolkitObject, UnknownKind
from fluxbus_common.api.notification import NOTIFICATION_GROUP, Alert, Provider, Receiver
from fluxbus_common.api.source import SOURCE_GROUP, GitRepository

__all__ = [
    "KINDS",
    "AnyObject",
    "InvalidObject",
    "KindInfo",
    "UnknownKind",
    "dump_object",
    "kind_for",
    "load_documents",
    "parse_object",
    "resolve_kind",
]

AnyObject: TypeAlias = ToolkitObject[Any, Any] | Secret | ConfigMap
"""What `parse_object` returns: a toolkit object (with spec/status) or a Secret/ConfigMap."""


@dataclass(frozen=True)
class KindInfo:
    """One kind: its API group and versions (preferred first), names and model."""

    kind: str
    group: str
    versions: tuple[str, ...]
    plural: str
    singular: str
    short_names: tuple[str, ...]
    model: type[AnyObject]
    store: Literal["objects", "secrets"]

    @property
    def api_version(self) -> str:
        """The preferred apiVersion, e.g. `source.toolkit.fluxcd.io/v1` (core kinds: `v1`)."""
        return self.api_versions[0]

    @property
    def api_versions(self) -> tuple[str, ...]:
        """Every accepted apiVersion, preferred first."""
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)

    @property
    def names(self) -> tuple[str, ...]:
        """Every lower-case name `resolve_kind` accepts for this kind."""
        return (self.plural, self.singular, *self.short_names, self.kind.lower())


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "GitRepository",
        SOURCE_GROUP,
        ("v1",),
        "gitrepositories",
        "gitrepository",
        ("gitrepo",),
        GitRepository,
        "objects",
    ),
    KindInfo(
        "HelmRepository",
        SOURCE_GROUP,
        ("v1",),
        "helmrepositories",
        "helmrepository",
        ("helmrepo",),
        HelmRepository,
        "objects",
    ),
    KindInfo(
        "HelmChart",
        SOURCE_GROUP,
        ("v1",),
        "helmcharts",
        "helmchart",
        ("hc",),
        HelmChart,
        "objects",
    ),
    KindInfo(
        "HelmRelease",
        HELM_GROUP,
        ("v2",),
        "helmreleases",
        "helmrelease",
        ("hr",),
        HelmRelease,
        "objects",
    ),
    KindInfo(
        "Kustomization",
        KUSTOMIZE_GROUP,
        ("v1",),
        "kustomizations",
        "kustomization",
        ("ks",),
        Kustomization,
        "objects",
    ),
    KindInfo(
        "ImageRepository",
        IMAGE_GROUP,
        ("v1", "v1beta2"),
        "imagerepositories",
        "imagerepository",
        ("imagerepo", "imgrepo"),
        ImageRepository,
        "objects",
    ),
    KindInfo(
        "ImagePolicy",
        IMAGE_GROUP,
        ("v1", "v1beta2"),
        "imagepolicies",
        "imagepolicy",
        ("imagepol", "imgpol"),
        ImagePolicy,
        "objects",
    ),
    KindInfo(
        "ImageUpdateAutomation",
        IMAGE_GROUP,
        ("v1", "v1beta2"),
        "imageupdateautomations",
        "imageupdateautomation",
        ("imageupdate", "iua", "imgupd", "imgauto"),
        ImageUpdateAutomation,
        "objects",
    ),
    KindInfo(
        "Provider",
        NOTIFICATION_GROUP,
        ("v1beta3",),
        "providers",
        "provider",
        (),
        Provider,
        "objects",
    ),
    KindInfo(
        "Alert",
        NOTIFICATION_GROUP,
        ("v1beta3",),
        "alerts",
        "alert",
        (),
        Alert,
        "objects",
    ),
    KindInfo(
        "Receiver",
        NOTIFICATION_GROUP,
        ("v1",),
        "receivers",
        "receiver",
        (),
        Receiver,
        "objects",
    ),
    KindInfo("Secret", "", ("v1",), "secrets", "secret", (), Secret, "secrets"),
    KindInfo("ConfigMap", "", ("v1",), "configmaps", "configmap", ("cm",), ConfigMap, "secrets"),
)

_BY_NAME: dict[str, KindInfo] = {name: info for info in KINDS for name in info.names}
_BY_API: dict[tuple[str, str], KindInfo] = {
    (api_version, info.kind): info for info in KINDS for api_version in info.api_versions
}


def resolve_kind(name: str) -> KindInfo:
    """Return the kind a user means by `name`.

    Accepts the plural, singular, a short name or the Kind, in any case
    (`ks`, `Kustomization`, `gitrepositories`), optionally qualified by the
    group as kubectl allows (`kustomizations.kustomize.toolkit.fluxcd.io`).
    Raises UnknownKind.
    """
    lowered = name.strip().lower()
    info = _BY_NAME.get(lowered)
    if info is None and "." in lowered:
        short, _, group = lowered.partition(".")
        candidate = _BY_NAME.get(short)
        if candidate is not None and candidate.group == group:
            info = candidate
    if info is None:
        raise UnknownKind(f"unknown kind: {name}")
    return info


def kind_for(api_version: str, kind: str) -> KindInfo:
    """Return the kind of a manifest's apiVersion/kind pair (exact spelling).

    Raises UnknownKind(`unknown apiVersion/kind: foo/v1 Bar`).
    """
    info = _BY_API.get((api_version, kind))
    if info is None:
        hint = (
            f" ({not_served_message(kind, api_version)})" if not_served(api_version, kind) else ""
        )
        raise UnknownKind(f"unknown apiVersion/kind: {api_version} {kind}{hint}")
    return info


# -- parsing --------------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _format_path(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as the user wrote it: `spec.dependsOn[0].name`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:  # a map key such as a label `app.kubernetes.io/name`
            out += f"[{json.dumps(part)}]"
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind in ("value_error", "assertion_error"):
        ctx = error.get("ctx") or {}
        if "error" in ctx:
            return str(ctx["error"])
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    msg = str(error["msg"])
    msg = msg[:1].lower() + msg[1:]
    value = error.get("input")
    if value is None or isinstance(value, (str, int, float, bool)):
        msg += f" (got {_short(value)})"
    return msg


def _errors_of(exc: ValidationError) -> list[tuple[str, str]]:
    return [(_format_path(e["loc"]), _reason(e)) for e in exc.errors()]


def _join(errors: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{path}: {reason}" if path else reason for path, reason in errors)


def _fail(errors: list[tuple[str, str]]) -> InvalidObject:
    return InvalidObject(_join(errors), errors)


def parse_object(doc: Mapping[str, Any]) -> AnyObject:
    """Validate one manifest (a dict as YAML/JSON gives it) by its apiVersion and kind.

    Returns the kind's model instance. Raises InvalidObject whose str lists
    every problem as `<field path>: <reason>` joined by "; ", e.g.
    `spec.interval: invalid duration "5 minutes"`; an unknown pair reads
    `unknown apiVersion/kind: foo/v1 Bar`.
    """
    if not isinstance(doc, Mapping):
        raise _fail([("", f"expected an object (mapping), got {type(doc).__name__}")])
    missing = [
        (field, "required field is missing")
        for field in ("apiVersion", "kind")
        if not isinstance(doc.get(field), str) or not doc.get(field)
    ]
    if missing:
        raise _fail(missing)
    try:
        info = kind_for(doc["apiVersion"], doc["kind"])
    except UnknownKind as e:
        raise _fail([("", str(e))]) from None
    try:
        obj = info.model.model_validate(doc)
    except ValidationError as e:
        raise _fail(_errors_of(e)) from None
    return obj


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's loader when PyYAML was built with it (same API, much faster)
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _no_timestamps_loader() -> type[yaml.SafeLoader]:
    class Loader(_SafeLoader):
        """SafeLoader that keeps timestamps as strings (as Kubernetes' YAML does) and
        rejects duplicate keys (as kubectl does)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f'duplicate key "{key}"',
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


_LOADER = _no_timestamps_loader()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            return f"invalid YAML: line {mark.line + 1} column {mark.column + 1}: {problem}"
        return f"invalid YAML: {problem}"
    return f"invalid YAML: {exc}"


def _iter_yaml(text: str, source: str) -> Iterator[tuple[int, Any]]:
    number = 0
    try:
        safeyaml.check(text)  # an alias bomb is refused before it is expanded
        for doc in yaml.load_all(text, Loader=_LOADER):
            number += 1
            yield number, doc
    except yaml.YAMLError as e:
        raise InvalidObject(f"{source}: document {number + 1}: {_yaml_reason(e)}") from None


def _expand(doc: Any) -> list[tuple[str, Any]]:
    """Return (path prefix, manifest) pairs: one for a manifest, one per item of a `List`."""
    if isinstance(doc, Mapping) and doc.get("kind") == "List" and "items" in doc:
        items = doc["items"]
        if not isinstance(items, list):
            return [("items", items)]
        return [(f"items[{i}]", item) for i, item in enumerate(items)]
    return [("", doc)]


def load_documents(text: str, source: str) -> list[AnyObject]:
    """Parse multi-document YAML into objects, all or nothing.

    Empty documents are skipped; a `kind: List` expands to its items. Raises
    InvalidObject `<source>: document <N>: <field>: <reason>` (N counts every
    document from 1), for YAML syntax errors and unknown apiVersion/kind too;
    problems in several documents are joined with "; ".
    """
    objects: list[AnyObject] = []
    problems: list[str] = []
    all_errors: list[tuple[str, str]] = []
    for number, doc in _iter_yaml(text, source):
        if doc is None:
            continue
        doc_errors: list[tuple[str, str]] = []
        for prefix, manifest in _expand(doc):
            try:
                objects.append(parse_object(manifest))
            except InvalidObject as e:
                doc_errors.extend(
                    (f"{prefix}.{path}" if prefix and path else prefix or path, reason)
                    for path, reason in e.errors
                )
        if doc_errors:
            problems.append(f"{source}: document {number}: {_join(doc_errors)}")
            all_errors.extend((f"document {number}: {p}" if p else "", r) for p, r in doc_errors)
    if problems:
        raise InvalidObject("; ".join(problems), all_errors)
    return objects


# -- dumping --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Return `value` with nested models dumped by the set-or-changed rule."""
    if isinstance(value, BaseModel):
        return _dump_set(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dump_set(model: BaseModel, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Dump the fields that were set (exactly as given) plus those changed from their default.

    The second half catches in-place edits (`metadata.labels[k] = v`,
    `spec.depends_on.append(...)`) that pydantic does not record as "set".
    Unset defaults are left out: re-parsing the dump yields the same model.
    """
    out: dict[str, Any] = {}
    fields_set = model.model_fields_set
    for name, field in type(model).model_fields.items():
        if name in exclude:
            continue
        value = getattr(model, name)
        if name not in fields_set and value == field.get_default(call_default_factory=True):
            continue
        out[field.alias or name] = _plain(value)
    out.update({k: _plain(v) for k, v in (model.model_extra or {}).items()})
    return out


def _dump_status(status: BaseModel) -> dict[str, Any]:
    """Dump a status without None values, leaving out unset fields still at their default."""
    out = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    for name, field in type(status).model_fields.items():
        if name in status.model_fields_set:
            continue
        if getattr(status, name) == field.get_default(call_default_factory=True):
            out.pop(field.alias or name, None)
    return out


def dump_object(obj: KubeObject, *, include_status: bool = True) -> dict[str, Any]:
    """Return the camelCase manifest of `obj` (JSON-compatible, deterministic key order).

    metadata and spec hold the fields that were set (so `dump_object(parse_object(d)) == d`)
    plus any changed since from their defaults; status holds every field except None
    values and untouched defaults, and is left out when empty and never set.
    """
    out: dict[str, Any] = {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": _dump_set(obj.metadata),
    }
    if isinstance(obj, ToolkitObject):
        out["spec"] = _dump_set(obj.spec)
        if include_status:
            status = _dump_status(obj.status)
            if status or "status" in obj.model_fields_set:
                out["status"] = status
    else:
        out.update(_dump_set(obj, exclude=frozenset({"api_version", "kind", "metadata"})))
    return out
