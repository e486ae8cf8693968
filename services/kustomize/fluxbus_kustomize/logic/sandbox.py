"""The sandbox check run on every kustomization file before kustomize sees it.

fluxbus renders with `--load-restrictor LoadRestrictionsNone` (as Flux does:
an overlay may use a patch from a parent directory), so this module is what
confines kustomize to the artifact root. For a kustomization dict and its
directory (both relative to the artifact root) it lists every path it
references and reports:

- a reference that resolves outside the root (after `..` normalisation), or
  is absolute;
- a URL or remote base (`https://`, `git::`, `ssh://`, `github.com/...`,
  `?ref=`, `git@host:`);
- Helm chart inflation (`helmCharts`, `helmGlobals`, `helmChartInflationGenerator`);
- in transformer/generator/validator configs: a plugin that is not built into
  kustomize, or a KRM function (`config.kubernetes.io/function`).

Symlinks never get here: the artifact extraction rejects them.
Error text names the kustomization file and the offending reference.

Pure: no I/O.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from fluxbus_kustomize.logic.manifests import load_all

Role = Literal["resource", "component", "file", "plugin"]
"""What a reference is for: a resource or component (file or directory to follow),
a plain file (patch, generator input, crd, configuration, openapi, replacements),
or a plugin config (file or directory of transformer/generator/validator configs)."""

_URL_RE = re.compile(
    r"""^(?:[a-zA-Z][a-zA-Z0-9+.-]*://   # https://, ssh://, file://, git+ssh://
        |git::|gh:|github\.com[/:]|gitlab\.com[/:]|bitbucket\.org[/:]
        |[\w.-]+@[\w.-]+:)              # git@github.com:org/repo
    """,
    re.VERBOSE,
)

BUILTIN_PLUGIN_KINDS = frozenset(
    {
        "AnnotationsTransformer",
        "ConfigMapGenerator",
        "HashTransformer",
        "IAMPolicyGenerator",
        "ImageTagTransformer",
        "LabelTransformer",
        "NamespaceTransformer",
        "PatchJson6902Transformer",
        "PatchStrategicMergeTransformer",
        "PatchTransformer",
        "PrefixSuffixTransformer",
        "PrefixTransformer",
        "ReplacementTransformer",
        "ReplicaCountTransformer",
        "SecretGenerator",
        "SortOrderTransformer",
        "SuffixTransformer",
        "ValueAddTransformer",
    }
)
"""kustomize's builtin plugins allowed in `transformers:`/`generators:` configs
(HelmChartInflationGenerator is left out on purpose: no Helm)."""

FUNCTION_ANNOTATIONS = ("config.kubernetes.io/function", "config.k8s.io/function")


@dataclass(frozen=True)
class Reference:
    """One path a kustomization names."""

    field: str
    """Where it is, e.g. `resources[0]` or `configMapGenerator[1].files[0]`."""
    value: str
    """The reference as written."""
    role: Role
    resolved: str | None = None
    """The path relative to the artifact root, POSIX-normalised; None when invalid."""


@dataclass
class SandboxReport:
    """The outcome of checking one kustomization file."""

    errors: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)

    @property
    def follow(self) -> list[Reference]:
        """Resources and components inside the root (directories among them are
        kustomizations the adapter must check too)."""
        return [
            r
            for r in self.references
            if r.role in ("resource", "component") and r.resolved is not None
        ]

    @property
    def plugin_paths(self) -> list[Reference]:
        """Plugin config files or directories the adapter must read and pass to
        `check_plugin_config`."""
        return [r for r in self.references if r.role == "plugin" and r.resolved is not None]


def is_remote(ref: str) -> bool:
    """Return whether a reference is a URL or a remote (Git/HTTP) base."""
    return bool(_URL_RE.match(ref)) or "?ref=" in ref or "?version=" in ref


def _is_inline(value: str) -> bool:
    """kustomize accepts inline YAML in patchesStrategicMerge and plugin lists."""
    return "\n" in value


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield i, item


def _iter_references(kus: Mapping[str, Any]) -> Iterator[tuple[str, str, Role]]:
    listed: tuple[tuple[str, Role], ...] = (
        ("resources", "resource"),
        ("bases", "resource"),
        ("components", "component"),
        ("crds", "file"),
        ("configurations", "file"),
        ("patchesStrategicMerge", "file"),
        ("transformers", "plugin"),
        ("generators", "plugin"),
        ("validators", "plugin"),
    )
    for key, role in listed:
        for i, value in _strings(kus.get(key)):
            if role == "file" and _is_inline(value):
                continue  # an inline patch, not a path
            yield f"{key}[{i}]", value, role
    for key in ("patches", "patchesJson6902", "replacements"):
        for i, item in enumerate(kus.get(key) or []):
            if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                yield f"{key}[{i}].path", item["path"], "file"
    for key in ("configMapGenerator", "secretGenerator"):
        for i, gen in enumerate(kus.get(key) or []):
            if not isinstance(gen, Mapping):
                continue
            yield from _generator_inputs(f"{key}[{i}]", gen)
    openapi = kus.get("openapi")
    if isinstance(openapi, Mapping) and isinstance(openapi.get("path"), str):
        yield "openapi.path", openapi["path"], "file"


def _generator_inputs(prefix: str, gen: Mapping[str, Any]) -> Iterator[tuple[str, str, Role]]:
    for j, f in _strings(gen.get("files")):
        # `key=path` or `path`
        path = f.split("=", 1)[1] if "=" in f else f
        yield f"{prefix}.files[{j}]", path, "file"
    for j, e in _strings(gen.get("envs")):
        yield f"{prefix}.envs[{j}]", e, "file"
    if isinstance(gen.get("env"), str):
        yield f"{prefix}.env", gen["env"], "file"


def resolve(kdir: str, ref: str) -> str | None:
    """Return `ref` (relative to `kdir`) as a normalised path relative to the root,
    or None when it is absolute or leaves the root."""
    if ref.startswith("/") or ref.startswith("\\"):
        return None
    joined = posixpath.normpath(posixpath.join(kdir or ".", ref))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined


def check_kustomization(kus: Mapping[str, Any], kfile: str) -> SandboxReport:
    """Check one kustomization (as a dict) whose file is `kfile` (relative to the root).

    Returns the report: errors (empty when safe) and every reference found.
    """
    report = SandboxReport()
    kdir = posixpath.dirname(kfile) or "."
    if not isinstance(kus, Mapping):
        report.errors.append(f"{kfile}: not a kustomization object")
        return report
    for key in ("helmCharts", "helmGlobals", "helmChartInflationGenerator"):
        if kus.get(key):
            report.errors.append(f"{kfile}: {key}: Helm chart inflation is not allowed")
    for where, value, role in _iter_references(kus):
        if role == "plugin" and _is_inline(value):
            report.errors.extend(check_plugin_config(f"{kfile}: {where}", value, kdir))
            continue
        if is_remote(value):
            report.errors.append(f"{kfile}: {where}: '{value}' is a remote reference, not allowed")
            report.references.append(Reference(where, value, role, None))
            continue
        resolved = resolve(kdir, value)
        if resolved is None:
            report.errors.append(f"{kfile}: {where}: '{value}' points outside the artifact root")
        report.references.append(Reference(where, value, role, resolved))
    return report


def check_plugin_config(path: str, text: str, kdir: str) -> list[str]:
    """Check a transformer/generator/validator config file; return errors naming it.

    Only kustomize's builtin plugins are allowed, with file inputs inside the root;
    KRM functions (exec or container) are rejected. `kdir` is the directory of the
    kustomization that loads it (relative paths in the config resolve from there).
    """
    errors: list[str] = []
    try:
        docs = [d for d in load_all(text) if d is not None]
    except yaml.YAMLError as e:
        return [f"{path}: not valid YAML: {e}"]
    for index, doc in enumerate(docs):
        where = f"{path}: document {index}"
        if not isinstance(doc, Mapping):
            errors.append(f"{where}: not an object")
            continue
        errors.extend(_check_plugin_doc(where, doc, kdir))
    return errors


def _check_plugin_doc(where: str, doc: Mapping[str, Any], kdir: str) -> list[str]:
    errors: list[str] = []
    api_version = str(doc.get("apiVersion", ""))
    kind = str(doc.get("kind", ""))
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    for key in FUNCTION_ANNOTATIONS:
        if key in annotations:
            errors.append(f"{where}: {kind}: KRM function plugins ({key}) are not allowed")
    if errors:
        return errors
    if api_version.startswith("kustomize.config.k8s.io/") and kind in (
        "Kustomization",
        "Component",
    ):
        return errors
    if api_version != "builtin" and not api_version.startswith("kustomize.config.k8s.io/"):
        errors.append(
            f"{where}: {api_version}/{kind} is not a builtin kustomize plugin "
            "(exec and Go plugins are not allowed)"
        )
        return errors
    if kind not in BUILTIN_PLUGIN_KINDS:
        errors.append(f"{where}: {kind} is not an allowed builtin kustomize plugin")
        return errors
    refs: list[tuple[str, str]] = []
    if isinstance(doc.get("path"), str):
        refs.append(("path", doc["path"]))
    for i, p in _strings(doc.get("paths")):
        refs.append((f"paths[{i}]", p))
    for f, value, _ in _generator_inputs(kind, doc):
        refs.append((f, value))
    for i, rep in enumerate(doc.get("replacements") or []):
        if isinstance(rep, Mapping) and isinstance(rep.get("path"), str):
            refs.append((f"replacements[{i}].path", rep["path"]))
    for f, value in refs:
        if is_remote(value):
            errors.append(f"{where}: {f}: '{value}' is a remote reference, not allowed")
        elif resolve(kdir, value) is None:
            errors.append(f"{where}: {f}: '{value}' points outside the artifact root")
    return errors
