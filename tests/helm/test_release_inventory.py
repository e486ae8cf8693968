"""A HelmRelease's `status.inventory` lists the objects of its deployed release,
as Flux's helm-controller records it (`fluxbus tree` reads it): namespaced ones
in the release namespace, cluster-scoped ones without, Helm's hooks left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helmrelease_helpers import CONFIGMAP, chart, helmrelease, running

from fluxbus_common.bus import Bus

CLUSTER_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}:reader
rules: []
"""
HOOK = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: post-install,post-upgrade
data: {}
"""
EXTRA = """
{{- if .Values.extra }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-extra
stringData:
  token: "not shown"
{{- end }}
"""


def ids(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["id"], e["v"]) for e in (status.get("inventory") or {}).get("entries", [])]


async def test_the_inventory_follows_the_deployed_release(bus: Bus, kubelite: Any, tmp_path: Path):
    templates = {
        "cm.yaml": CONFIGMAP,
        "role.yaml": CLUSTER_ROLE,
        "hook.yaml": HOOK,
        "x.yaml": EXTRA,
    }
    packaged = chart(values={"mode": "a", "replicaCount": 1, "extra": False}, templates=templates)
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(
            helmrelease("web", targetNamespace="apps", install={"createNamespace": True})
        )
        await env.publish_chart("default", "default-web", packaged)
        st = await env.ready(key)

        assert ids(st) == [
            ("_apps-web__reader_rbac.authorization.k8s.io_ClusterRole", "v1"),
            ("apps_apps-web-settings__ConfigMap", "v1"),
        ]

        await env.apply(
            helmrelease(
                "web",
                targetNamespace="apps",
                install={"createNamespace": True},
                values={"extra": True},
            )
        )
        st = await env.until(key, "Ready", "True", "UpgradeSucceeded")
        assert ids(st) == [
            ("_apps-web__reader_rbac.authorization.k8s.io_ClusterRole", "v1"),
            ("apps_apps-web-extra__Secret", "v1"),
            ("apps_apps-web-settings__ConfigMap", "v1"),
        ]
