"""`fluxbus create source git` and `fluxbus create kustomization`: Flux's flags,
Flux's checks, the same manifest `flux create … --export` prints; without
`--export` the object is stored and the command waits for its first reconcile
(a reconcile request rides along, so the wait ends on exactly that reconcile).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fluxbus_cli import render, store
from fluxbus_cli.commands import reconcile as reconcile_cmd
from fluxbus_cli.commands.receiver import split_values
from fluxbus_cli.errors import CliError
from fluxbus_cli.manifests import check_namespace
from fluxbus_cli.render import Output
from fluxbus_common.api import (
    GitRepository,
    InvalidObject,
    Kustomization,
    parse_object,
    resolve_kind,
)
from fluxbus_common.api.compat import SERVED_SOURCE_KINDS, not_served_message
from fluxbus_common.bus import Bus
from fluxbus_common.duration import format_duration, parse_duration
from fluxbus_common.reconcile_requests import annotate_request, request_token

GIT_SCHEMES = ("ssh", "http", "https")
FLUX_SOURCE_KINDS = ("GitRepository", "OCIRepository", "Bucket")
"""What Flux's `--source` accepts; fluxbus serves `SERVED_SOURCE_KINDS` of them."""
DEFAULT_INTERVAL = "1m"
"""`flux create --interval`'s default."""

Builder = Callable[[], dict[str, Any]]
"""Builds a manifest from the flags, raising CliError for a bad one."""


def interval_text(value: str) -> str:
    """Go's spelling of the interval (`1m` → `1m0s`), as Flux writes it."""
    try:
        return format_duration(parse_duration(value))
    except ValueError as e:
        raise CliError(f"--interval: {e}") from None


def validated(doc: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        parse_object(doc)
    except InvalidObject as e:
        raise CliError(f"invalid {what}: {e}") from None
    return doc


@dataclass(frozen=True)
class GitSourceRequest:
    """`flux create source git NAME` flags."""

    name: str
    namespace: str
    url: str
    branch: str = ""
    tag: str = ""
    semver: str = ""
    commit: str = ""
    secret_ref: str = ""
    interval: str = DEFAULT_INTERVAL


def git_source_document(req: GitSourceRequest) -> dict[str, Any]:
    """The GitRepository manifest; raise CliError as `flux create source git` refuses
    (no URL, a scheme other than ssh/http/https, no ref)."""
    check_namespace(req.namespace)
    if not req.url:
        raise CliError("--url is required")
    scheme = urlsplit(req.url).scheme
    if scheme not in GIT_SCHEMES:
        raise CliError(f"git URL scheme '{scheme}' not supported, can be: ssh, http and https")
    if not (req.branch or req.tag or req.semver or req.commit):
        raise CliError(
            "a Git ref is required, use one of the following: --branch, --tag, --commit "
            "or --tag-semver"
        )
    # Flux's precedence: commit (with its branch), then semver, then tag, then branch.
    if req.commit:
        ref = {"branch": req.branch, "commit": req.commit} if req.branch else {"commit": req.commit}
    elif req.semver:
        ref = {"semver": req.semver}
    elif req.tag:
        ref = {"tag": req.tag}
    else:
        ref = {"branch": req.branch}
    spec: dict[str, Any] = {"interval": interval_text(req.interval), "ref": ref}
    if req.secret_ref:
        spec["secretRef"] = {"name": req.secret_ref}
    spec["url"] = req.url
    doc = {
        "apiVersion": GitRepository.model_fields["api_version"].default,
        "kind": "GitRepository",
        "metadata": {"name": req.name, "namespace": req.namespace},
        "spec": spec,
    }
    return validated(doc, "GitRepository")


@dataclass(frozen=True)
class KustomizationRequest:
    """`flux create kustomization NAME` flags."""

    name: str
    namespace: str
    source: str
    path: str = "./"
    prune: bool = False
    interval: str = DEFAULT_INTERVAL
    target_namespace: str = ""
    depends_on: Sequence[str] = field(default_factory=tuple)


def source_reference(value: str) -> dict[str, str]:
    """Read Flux's `--source` `[<kind>/]<name>[.<namespace>]` (kind GitRepository when
    omitted; the last dot starts the namespace)."""
    if not value.strip():
        raise CliError("--source is required ([<kind>/]<name>.<namespace>)")
    kind, sep, rest = value.strip().partition("/")
    if not sep:
        kind, rest = "", kind
    name, namespace = rest, ""
    if "." in rest:
        name, _, namespace = rest.rpartition(".")
    if not name:
        raise CliError(f"no name given for source of kind '{kind}'")
    if not kind:
        if name in FLUX_SOURCE_KINDS:
            raise CliError(f"no kind specified for source '{name}'")
        kind = "GitRepository"
    matched = [k for k in FLUX_SOURCE_KINDS if k.lower() == kind.lower()]
    if not matched:
        raise CliError(
            f"source kind '{kind}' is not supported, must be one of: {', '.join(FLUX_SOURCE_KINDS)}"
        )
    if matched[0] not in SERVED_SOURCE_KINDS:
        raise CliError(not_served_message(matched[0]))
    ref = {"kind": matched[0], "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def safe_path(value: str) -> str:
    """`./`-prefixed relative path inside the source (Flux's SafeRelativePath)."""
    if not value.strip():
        raise CliError("path is required")
    if value.startswith("/"):
        raise CliError(f'--path must be relative to the source root, got "{value}"')
    clean = posixpath.normpath(value.replace("\\", "/"))
    if clean == ".." or clean.startswith("../"):
        raise CliError(f'--path must stay inside the source, got "{value}"')
    return "./" if clean == "." else f"./{clean}"


def _dependency(value: str) -> dict[str, str]:
    namespace, sep, name = value.partition("/")
    if not sep:
        return {"name": value}
    if not namespace or not name:
        raise CliError(f"--depends-on: expected <name> or <namespace>/<name>, got '{value}'")
    return {"name": name, "namespace": namespace}


def kustomization_document(req: KustomizationRequest) -> dict[str, Any]:
    """The Kustomization manifest; raise CliError as `flux create kustomization` refuses."""
    check_namespace(req.namespace)
    spec: dict[str, Any] = {}
    depends = [_dependency(d) for d in split_values(req.depends_on)]
    if depends:
        spec["dependsOn"] = depends
    spec["interval"] = interval_text(req.interval)
    spec["path"] = safe_path(req.path)
    spec["prune"] = req.prune
    spec["sourceRef"] = source_reference(req.source)
    if req.target_namespace:
        spec["targetNamespace"] = check_namespace(req.target_namespace)
    doc = {
        "apiVersion": Kustomization.model_fields["api_version"].default,
        "kind": "Kustomization",
        "metadata": {"name": req.name, "namespace": req.namespace},
        "spec": spec,
    }
    return validated(doc, "Kustomization")


def export(out: Output, doc: dict[str, Any]) -> int:
    """Print the manifest as `flux create … --export` does (one `---` document)."""
    out.data(render.to_yaml_stream([doc]))
    return 0


async def create(
    bus: Bus, out: Output, doc: dict[str, Any], *, wait: bool = True, timeout: float = 300.0
) -> int:
    """Store the object (created or configured) and, with `wait`, wait for its next
    reconcile: 0 when Ready; CliError with the controller's message otherwise."""
    kind, meta = str(doc["kind"]), doc["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    token = request_token()
    annotate_request(doc, token)
    out.step(f"applying {kind} {name} in {namespace} namespace")
    result = await store.put(bus, parse_object(doc))
    out.success(f"{kind} {result}")
    if not wait:
        return 0
    info = resolve_kind(kind)
    return await reconcile_cmd.wait_handled(bus, out, info, namespace, name, token, timeout)
