"""The data the Helm engine takes and returns: targets, credentials, limits,
chart information and releases (frozen dataclasses).

`Release.from_wire` turns helm-c's release documents into `Release`.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KubeTarget:
    """How a worker reaches the cluster.

    With neither `kubeconfig` nor `kubeconfig_path`, `KUBECONFIG`, then
    `~/.kube/config`, then the in-cluster service account are used.
    """

    kubeconfig: str | None = field(default=None, repr=False)  # kubeconfig YAML content
    kubeconfig_path: str | None = None
    context: str | None = None
    as_user: str | None = None  # impersonation (system:serviceaccount:<ns>:<name>)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials and transport for an OCI registry (never logged: secrets have no repr).

    `insecure` skips TLS verification; `ca_pem` trusts a private CA; `cert_pem` and
    `key_pem` are a client certificate (mTLS), as Flux's `certSecretRef` holds them.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    plain_http: bool = False
    insecure: bool = False
    ca_pem: str | None = field(default=None, repr=False)
    cert_pem: str | None = field(default=None, repr=False)
    key_pem: str | None = field(default=None, repr=False)


# The smallest memory limit a worker starts under: an idle worker (Python + Helm's Go
# runtime) has ~145 MiB of data mappings; 256 MiB leaves room for small charts.
MIN_WORKER_MEMORY = 256 * 2**20


@dataclass(frozen=True)
class WorkerLimits:
    """How many worker processes run Helm, and what each may use per call."""

    workers: int = 2
    memory_bytes: int = 768 * 2**20  # data memory (RLIMIT_DATA) per worker; 0: no limit
    timeout: float = 300.0  # seconds per call (cluster actions: at least their timeout + 30)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"WorkerLimits.workers must be at least 1, not {self.workers}")
        if self.timeout <= 0:
            raise ValueError(f"WorkerLimits.timeout must be positive, not {self.timeout}")
        if self.memory_bytes and self.memory_bytes < MIN_WORKER_MEMORY:
            raise ValueError(
                f"WorkerLimits.memory_bytes must be 0 (no limit) or at least "
                f"{MIN_WORKER_MEMORY} (Helm's Go runtime alone maps ~150 MiB), "
                f"not {self.memory_bytes}"
            )


@dataclass(frozen=True)
class ChartInfo:
    """A chart's metadata and default values."""

    name: str
    version: str
    app_version: str | None
    values: dict[str, Any]
    dependencies: list[str]


@dataclass(frozen=True)
class Release:
    """One revision of a Helm release."""

    name: str
    namespace: str
    revision: int
    status: str  # deployed|failed|superseded|uninstalled|uninstalling|pending-*
    chart_name: str
    chart_version: str
    app_version: str | None
    manifest: str
    description: str
    first_deployed: str
    last_deployed: str
    deleted: str | None
    config: dict[str, Any]  # the user-supplied values
    test_hooks: dict[str, str]  # test hook name -> phase ("Succeeded", "Failed", ...)

    @classmethod
    def from_wire(cls, doc: dict[str, Any]) -> Release:
        """A release from helm-c's `helm_get` document (`summary`, `info`, `config`, `hooks`),
        or from a bare summary (the install/upgrade/history answers)."""
        summary: dict[str, Any] = doc.get("summary") or doc
        info: dict[str, Any] = doc.get("info") or {}
        deployed = str(summary.get("deployed_at") or "")
        return cls(
            name=str(summary.get("name", "")),
            namespace=str(summary.get("namespace", "")),
            revision=int(summary.get("revision", 0)),
            status=str(info.get("status") or summary.get("status") or ""),
            chart_name=str(summary.get("chart_name", "")),
            chart_version=str(summary.get("chart_version", "")),
            app_version=summary.get("app_version") or None,
            manifest=str(summary.get("manifest") or ""),
            description=str(info.get("description") or ""),
            first_deployed=str(info.get("first_deployed") or deployed),
            last_deployed=str(info.get("last_deployed") or deployed),
            deleted=info.get("deleted") or None,
            config=dict(doc.get("config") or {}),
            test_hooks=hook_phases(doc.get("hooks")),
        )


@dataclass(frozen=True)
class TestResult:
    """What `helm test` reported: each test hook's phase, and the test pods' logs."""

    __test__ = False  # not a pytest test class

    hooks: dict[str, str]
    logs: str


def hook_phases(hooks: Any) -> dict[str, str]:
    """`{hook name: phase}` of the `test` hooks that ran, from helm-c's hook list."""
    phases: dict[str, str] = {}
    if not isinstance(hooks, list):
        return phases
    for hook in hooks:
        if not isinstance(hook, dict):
            continue
        events = hook.get("events") or []
        if "test" not in events and "test-success" not in events:
            continue
        last_run = hook.get("last_run") or {}
        phase = last_run.get("phase") if isinstance(last_run, dict) else None
        if hook.get("name") and phase:
            phases[str(hook["name"])] = str(phase)
    return phases
