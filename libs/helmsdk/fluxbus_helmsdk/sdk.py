"""The one adapter over helm_python (the `helm` extra): Helm actions on plain data.

`call(op, args)` runs one action synchronously and returns JSON-able data; the
worker process (`fluxbus_helmsdk.worker`) serves it over a pipe, and the engine
decodes the answers. Chart archives travel base64-encoded. helm_python's errors
become the engine's own (`fluxbus_helmsdk.errors`); a render error carries the
failing template parsed from Helm's message.

Only this module imports helm_python (an import-linter contract says so).
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import (
    ChartLoadError,
    HelmEngineError,
    HelmUnavailable,
    KubeUnreachable,
    RegistryError,
    ReleaseError,
    ReleaseNotFound,
    RenderError,
    ValuesError,
    failing_template,
)

try:
    import helm_python as helm
    from helm_python import _native
except Exception:  # the extra is not installed, or its native library does not load
    helm = None  # type: ignore[assignment]
    _native = None  # type: ignore[assignment]


Handler = Callable[[dict[str, Any]], Any]


def available() -> bool:
    """True when helm_python (the `helm` extra) is importable."""
    return helm is not None


def _translate(error: Exception, default: type[HelmEngineError]) -> HelmEngineError:
    """helm_python's error as the engine's own (`default` when the code says nothing)."""
    assert helm is not None
    message = str(error)
    if isinstance(error, helm.HelmRenderError):
        return RenderError(message, failing_template(message))
    table: list[tuple[type[Exception], type[HelmEngineError]]] = [
        (helm.HelmChartLoadError, ChartLoadError),
        (helm.HelmChartInvalidError, ChartLoadError),
        (helm.HelmValuesError, ValuesError),
        (helm.HelmNotFoundError, ReleaseNotFound),
        (helm.HelmRegistryError, RegistryError),
        (helm.HelmRepoError, RegistryError),
        (helm.HelmKubeError, KubeUnreachable),
        (helm.HelmReleaseError, ReleaseError),
        (helm.HelmStorageError, ReleaseError),
    ]
    for source, target in table:
        if isinstance(error, source):
            return target(message)
    return default(message)


@contextmanager
def _mapped(default: type[HelmEngineError]) -> Iterator[None]:
    if helm is None:
        raise HelmUnavailable()
    try:
        yield
    except helm.HelmError as e:
        raise _translate(e, default) from None


def _opts(**pairs: Any) -> str:
    return json.dumps({k: v for k, v in pairs.items() if v is not None})


def _seconds(timeout: float) -> int:
    return max(1, math.ceil(timeout))


# --------------------------------------------------------------------------- charts


def _load(chart_b64: str) -> Any:
    data = base64.b64decode(chart_b64)
    if not data:
        raise ChartLoadError("the chart archive is empty")
    with _mapped(ChartLoadError):
        try:
            return helm.Chart.load_archive(data)
        except helm.HelmInvalidArgError as e:
            raise ChartLoadError(str(e)) from None


def chart_info(args: dict[str, Any]) -> dict[str, Any]:
    with _load(args["chart"]) as chart, _mapped(ChartLoadError):
        meta = chart.metadata
        return {
            "name": str(meta.get("name", "")),
            "version": str(meta.get("version", "")),
            "app_version": meta.get("appVersion") or None,
            "values": chart.values,
            "dependencies": [str(d.get("name", "")) for d in meta.get("dependencies") or []],
        }


def render(args: dict[str, Any]) -> dict[str, str]:
    with _load(args["chart"]) as chart, _mapped(RenderError):
        rendered: dict[str, str] = chart.render(
            args.get("values") or {},
            name=args["release_name"],
            namespace=args["namespace"],
            revision=args.get("revision", 1),
            is_install=not args.get("is_upgrade", False),
            is_upgrade=bool(args.get("is_upgrade", False)),
        )
        return rendered


def package(args: dict[str, Any]) -> str:
    """Package `chart_dir` into `dest_dir`; `values_yaml` replaces values.yaml in the archive."""
    source = Path(args["chart_dir"])
    if not (source / "Chart.yaml").is_file():
        raise ChartLoadError(f"{source.name}: no Chart.yaml: not a chart directory")
    with tempfile.TemporaryDirectory(prefix="helm-package-") as scratch:
        chart_dir = source
        if args.get("values_yaml") is not None:
            chart_dir = Path(scratch) / source.name
            shutil.copytree(source, chart_dir, symlinks=False)
            (chart_dir / "values.yaml").write_text(args["values_yaml"])
        with _mapped(ChartLoadError):
            path: str = helm.package(
                chart_dir, destination=args["dest_dir"], version=args.get("version")
            )
            return path


# ------------------------------------------------------------------------- registries


def _registry_host(ref: str) -> str:
    parts = urlsplit(ref)
    if parts.scheme != "oci" or not parts.netloc:
        raise RegistryError(f"not an OCI reference (oci://host/path/chart): {ref}")
    return parts.netloc


def _pem_file(directory: str, name: str, pem: str | None) -> str | None:
    """Write `pem` to a private file for Helm's TLS options; its path (None without pem)."""
    if not pem:
        return None
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(pem)
    return path


@contextmanager
def _registry(ref: str, auth: dict[str, Any] | None) -> Iterator[Any]:
    """A registry client for `ref`'s host, its credentials in a private file.

    It logs in when there is a username or a TLS setting: Helm keeps the login's TLS
    options (skip verification, CA, client certificate) for the client's later calls.
    """
    auth = auth or {}
    host = _registry_host(ref)
    with tempfile.TemporaryDirectory(prefix="helm-registry-") as scratch, _mapped(RegistryError):
        client = helm.RegistryClient(
            plain_http=bool(auth.get("plain_http")),
            credentials_file=os.path.join(scratch, "config.json"),
        )
        with client:
            tls = _opts(
                insecure=bool(auth.get("insecure")) or None,
                plain_http=bool(auth.get("plain_http")) or None,
                ca_file=_pem_file(scratch, "ca.crt", auth.get("ca_pem")),
                cert_file=_pem_file(scratch, "tls.crt", auth.get("cert_pem")),
                key_file=_pem_file(scratch, "tls.key", auth.get("key_pem")),
            )
            if auth.get("username") or any(auth.get(k) for k in ("insecure", "ca_pem", "cert_pem")):
                _native.call_status(
                    "helm_registry_login",
                    client._raw(),
                    host,
                    auth.get("username") or "",
                    auth.get("password") or "",
                    tls,
                )
            yield client


def oci_tags(args: dict[str, Any]) -> list[str]:
    with _registry(args["ref"], args.get("auth")) as client, _mapped(RegistryError):
        tags: list[str] = client.tags(args["ref"])
        return tags


def oci_pull(args: dict[str, Any]) -> str:
    auth = args.get("auth") or {}
    with (
        _registry(args["ref"], auth) as client,
        tempfile.TemporaryDirectory(prefix="helm-pull-") as dest,
        _mapped(RegistryError),
    ):
        helm.pull(
            args["ref"],
            client=client,
            destination=dest,
            version=args["version"],
            plain_http=bool(auth.get("plain_http")),
            insecure_skip_tls_verify=bool(auth.get("insecure")),
        )
        archives = sorted(Path(dest).glob("*.tgz"))
        if not archives:
            raise RegistryError(f"pulling {args['ref']}:{args['version']} gave no chart archive")
        return base64.b64encode(archives[0].read_bytes()).decode()


def oci_push(args: dict[str, Any]) -> str:
    """Push a packaged chart to `remote` (oci://host/path); returns Helm's answer as JSON."""
    auth = args.get("auth") or {}
    with _registry(args["remote"], auth) as client, _mapped(RegistryError):
        pushed = helm.push(
            args["path"],
            args["remote"],
            client=client,
            plain_http=bool(auth.get("plain_http")),
            insecure_skip_tls_verify=bool(auth.get("insecure")),
        )
        return json.dumps(pushed)


def repo_index(args: dict[str, Any]) -> dict[str, Any]:
    """`helm repo index` of a directory of archives (writes index.yaml there)."""
    with _mapped(RegistryError):
        index: dict[str, Any] = helm.repo_index_generate(
            args["directory"], base_url=args.get("base_url")
        )
        return index


# --------------------------------------------------------------------------- releases


@contextmanager
def _config(args: dict[str, Any]) -> Iterator[Any]:
    """A helm Config for the request's target, storing releases in `storage_namespace`."""
    target: dict[str, Any] = args.get("target") or {}
    with _mapped(KubeUnreachable):
        config = helm.Config(
            kubeconfig_content=target.get("kubeconfig"),
            kubeconfig_path=target.get("kubeconfig_path"),
            kube_context=target.get("context"),
            kube_as_user=target.get("as_user"),
            namespace=args["storage_namespace"],
        )
    with config:
        yield config


def _get(config: Any, name: str, revision: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        _native.call_string("helm_get", config._raw(), name, _opts(revision=revision))
    )
    return doc


def _full(config: Any, summary: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The whole release (info, config, hooks) for an action's answer; a dry run stored
    nothing, so its summary and the request say what there is."""
    if args.get("dry_run"):
        info = {"status": summary.get("status"), "description": args.get("description")}
        return {"summary": summary, "config": args.get("values") or {}, "info": info}
    return _get(config, summary["name"], summary.get("revision"))


def _write(action: str, args: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    wait = bool(args.get("wait", True))
    dry_run = bool(args.get("dry_run"))
    common = {
        "namespace": args["namespace"],
        "timeout_seconds": _seconds(args["timeout"]),
        "wait": "watcher" if wait else None,
        "wait_for_jobs": (wait and bool(args.get("wait_for_jobs", True))) or None,
        "disable_hooks": bool(args.get("disable_hooks")) or None,
        "skip_crds": bool(args.get("skip_crds")) or None,
        "skip_schema_validation": bool(args.get("disable_schema_validation")) or None,
        "description": args.get("description"),
        "dry_run": "server" if dry_run else None,
    }
    with _load(args["chart"]) as chart, _config(args) as config, _mapped(ReleaseError):
        answer = _native.call_string(
            action,
            config._raw(),
            _native.HANDLE(0),
            chart._raw(),
            None,
            args["release_name"],
            json.dumps(args.get("values") or {}),
            _opts(**common, **options),
        )
        return _full(config, json.loads(answer), args)


def install(args: dict[str, Any]) -> dict[str, Any]:
    return _write(
        "helm_install",
        args,
        {
            "create_namespace": bool(args.get("create_namespace")) or None,
            "replace": bool(args.get("replace")) or None,
        },
    )


def upgrade(args: dict[str, Any]) -> dict[str, Any]:
    force = bool(args.get("force"))
    return _write(
        "helm_upgrade",
        args,
        {
            # Flux upgrades with the HelmRelease's values only, never the last release's.
            "reset_values": True,
            "max_history": args.get("max_history") or None,
            "cleanup_on_fail": bool(args.get("cleanup_on_fail")) or None,
            # Helm 4 refuses to force-replace with server-side apply.
            "force_replace": force or None,
            "server_side_apply": "false" if force else None,
        },
    )


def rollback(args: dict[str, Any]) -> None:
    force = bool(args.get("force"))
    wait = bool(args.get("wait", True))
    # Helm 4 has no --recreate-pods any more: `recreate` is accepted and ignored.
    options = _opts(
        version=args.get("version"),
        timeout_seconds=_seconds(args["timeout"]),
        wait="watcher" if wait else None,
        cleanup_on_fail=bool(args.get("cleanup_on_fail")) or None,
        disable_hooks=bool(args.get("disable_hooks")) or None,
        max_history=args.get("max_history") or None,
        force_replace=force or None,
        server_side_apply="false" if force else None,
    )
    with _config(args) as config, _mapped(ReleaseError):
        _native.call_status("helm_rollback", config._raw(), args["release_name"], options)


def uninstall(args: dict[str, Any]) -> None:
    options = _opts(
        keep_history=bool(args.get("keep_history")) or None,
        timeout_seconds=_seconds(args["timeout"]),
        wait="watcher" if args.get("wait", True) else None,
        disable_hooks=bool(args.get("disable_hooks")) or None,
        ignore_not_found=bool(args.get("ignore_not_found", True)) or None,
    )
    with _config(args) as config, _mapped(ReleaseError):
        _native.call_string("helm_uninstall", config._raw(), args["release_name"], options)


def test(args: dict[str, Any]) -> dict[str, Any]:
    with _config(args) as config, _mapped(ReleaseError):
        # No logs: Helm reads a log for every test hook as if it were a Pod, so a Job hook
        # would fail a passing test (Flux does not collect them either).
        config.test(
            args["release_name"],
            timeout=_seconds(args["timeout"]),
            include_names=args.get("include") or None,
            exclude_names=args.get("exclude") or None,
        )
        return {"release": _get(config, args["release_name"]), "logs": ""}


def history(args: dict[str, Any]) -> list[dict[str, Any]]:
    with _config(args) as config, _mapped(ReleaseError):
        try:
            summaries = config.history(args["release_name"])
        except helm.HelmNotFoundError:
            return []
        return [_get(config, s["name"], s["revision"]) for s in summaries]


def status(args: dict[str, Any]) -> dict[str, Any] | None:
    with _config(args) as config, _mapped(ReleaseError):
        try:
            return _get(config, args["release_name"], args.get("revision"))
        except helm.HelmNotFoundError:
            return None


OPERATIONS: dict[str, Handler] = {
    "chart_info": chart_info,
    "render": render,
    "package": package,
    "oci_tags": oci_tags,
    "oci_pull": oci_pull,
    "oci_push": oci_push,
    "repo_index": repo_index,
    "install": install,
    "upgrade": upgrade,
    "rollback": rollback,
    "uninstall": uninstall,
    "test": test,
    "history": history,
    "status": status,
}


def call(op: str, args: dict[str, Any]) -> Any:
    """Run Helm action `op` with `args`; JSON-able result, or a HelmEngineError raised."""
    if helm is None:
        raise HelmUnavailable()
    handler = OPERATIONS.get(op)
    if handler is None:
        raise HelmEngineError(f"unknown Helm engine operation {op!r}")
    return handler(args)
