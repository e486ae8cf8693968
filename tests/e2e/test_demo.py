"""`make demo` end to end: real processes (nats-server, kubelite, the source
and kustomize services), a real Git smart-HTTP server, real kubectl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_make_demo_reconciles_the_example_repository_and_exits_zero(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxbus_cli.demo",
            "--state-dir",
            str(tmp_path / "state"),
            "--timeout",
            "90",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for name in ("apps-dev", "apps-staging", "apps-production"):
        assert f"✔ kustomization/{name}: Applied revision: main@sha1:" in out
    deployments = out.split("$ kubectl get deployments")[1]
    rows = {line.split()[0]: line.split() for line in deployments.splitlines()[2:] if line.strip()}
    assert rows["dev"][2] == "1/1" and rows["dev"][7].endswith(":dev")
    assert rows["staging"][2] == "2/2" and rows["staging"][7].endswith(":staging")
    assert rows["production"][2] == "10/10" and rows["production"][7].endswith(":1.3.0")
