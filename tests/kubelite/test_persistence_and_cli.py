"""`--state` persistence across restarts and the `fluxbus-kubelite` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubelite_helpers import configmap, deployment, wait_until

from fluxbus_kubelite.testing import kubectl_binary


def test_state_file_keeps_objects_and_resource_version_across_restart(
    kubelite_factory: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    first = kubelite_factory(state=state)
    first.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=yaml.safe_dump(configmap("keep", {"a": "1"}, namespace="default")),
        check=True,
    )
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "boxes.persist.example.com"},
        "spec": {
            "group": "persist.example.com",
            "scope": "Namespaced",
            "names": {"plural": "boxes", "singular": "box", "kind": "Box"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    first.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd), check=True)
    box = {
        "apiVersion": "persist.example.com/v1",
        "kind": "Box",
        "metadata": {"name": "b", "namespace": "default"},
        "spec": {"x": 1},
    }
    first.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(box), check=True)
    before = json.loads(first.kubectl("get", "cm", "keep", "-o", "json", check=True).stdout)
    rv_before = first.call(lambda: first.server.store.rv)
    first.stop()

    second = kubelite_factory(state=state)
    after = json.loads(second.kubectl("get", "cm", "keep", "-o", "json", check=True).stdout)
    assert after == before
    assert second.call(lambda: second.server.store.rv) >= rv_before
    res = second.kubectl("get", "boxes", "b", "-o", "jsonpath={.spec.x}")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "1"
    second.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=yaml.safe_dump(configmap("new", namespace="default")),
        check=True,
    )
    new = json.loads(second.kubectl("get", "cm", "new", "-o", "json", check=True).stdout)
    assert int(new["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


def test_command_line_serves_and_writes_a_kubeconfig(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluxbus_kubelite", "--port", "0", "--kubeconfig", str(kc)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: kc.exists(), timeout=30)
        env = {**os.environ, "KUBECONFIG": str(kc)}
        cache = f"--cache-dir={tmp_path / 'cache'}"
        res = subprocess.run(
            [kubectl_binary(), cache, "get", "ns"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert "default" in res.stdout
        res = subprocess.run(
            [kubectl_binary(), cache, "apply", "--server-side", "-f", "-"],
            input=yaml.safe_dump(deployment("web")),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
