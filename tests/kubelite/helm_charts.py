"""Helpers of the Helm SDK tests: small charts written to disk, a Helm config per namespace."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import yaml

from fluxbus_kubelite.testing import KubeliteHandle

_counter = itertools.count()

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: "nginx:{{ .Values.tag }}"
          ports: [{containerPort: 80}]
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: 80}]
"""

DEFAULT_VALUES: dict[str, Any] = {"greeting": "hello", "replicaCount": 1, "tag": "1.25"}


def write_chart(
    root: Path,
    templates: dict[str, str],
    *,
    name: str = "demo",
    version: str = "0.1.0",
    values: dict[str, Any] | None = None,
    crds: dict[str, str] | None = None,
) -> Path:
    """A chart directory `root/<name>` with these templates (file name -> text) and CRDs."""
    chart = root / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version})
    )
    (chart / "values.yaml").write_text(yaml.safe_dump(values or DEFAULT_VALUES))
    for file, text in templates.items():
        (chart / "templates" / file).write_text(textwrap.dedent(text))
    if crds:
        (chart / "crds").mkdir(exist_ok=True)
        for file, text in crds.items():
            (chart / "crds" / file).write_text(textwrap.dedent(text))
    return chart


def release_name(prefix: str = "rel") -> str:
    """A release name unique in this test session."""
    return f"{prefix}{next(_counter)}"


def kubectl_json(kl: KubeliteHandle, *args: str) -> Any:
    """`kubectl get ... -o json` parsed: an object, None when it is not there, or a list's items."""
    out = kl.kubectl("get", *args, "-o", "json", "--ignore-not-found")
    assert out.returncode == 0, out.stderr
    found = yaml.safe_load(out.stdout) if out.stdout.strip() else None
    if found is not None and found.get("kind") == "List":
        return found["items"]
    return found


def names(kl: KubeliteHandle, *args: str) -> list[str]:
    """Sorted names of the objects `kubectl get <args>` lists."""
    return sorted(o["metadata"]["name"] for o in kubectl_json(kl, *args) or [])


def job(name: str, script: str, annotations: dict[str, str] | None = None) -> str:
    """A Job template running `sh -c <script>` (kubelite interprets echo/exit; see statuses)."""
    doc = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "run", "image": "busybox:1", "command": ["sh", "-c", script]}
                    ],
                }
            },
        },
    }
    return yaml.safe_dump(doc)


def helm_test_pod(name: str, script: str) -> str:
    """A `helm test` hook Pod running `sh -c <script>`."""
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"helm.sh/hook": "test"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "check", "image": "busybox:1", "command": ["sh", "-c", script]}
            ],
        },
    }
    return yaml.safe_dump(doc)
