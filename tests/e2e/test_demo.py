"""`make demo` end to end: real processes (nats-server, kubelite, the four
services), a real Git smart-HTTP server, the real docker-registry, a Slack
stand-in, real kubectl; the seven steps printed as observed, then `fluxbus get
all` and the timeline. Also: the example repository stays buildable by
kustomize, as real Flux needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fluxbus_cli.demo_story import Story
from fluxbus_kubelite.testing import kubectl_binary

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops-repo"


@pytest.mark.timeout(240)
def test_make_demo_plays_the_seven_steps_and_exits_zero(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxbus_cli.demo",
            "--state-dir",
            str(tmp_path / "state"),
            "--timeout",
            "90",
            "--timeline",
            str(tmp_path / "demo-timeline.png"),
        ],
        capture_output=True,
        text=True,
        timeout=230,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for number, title in enumerate(Story.STEPS, start=1):
        assert f"\n{number}. {title}\n" in out
    for name in ("apps-dev", "apps-staging", "apps-production"):
        assert f"✔ Kustomization/{name} Ready: applied main@sha1:" in out
    assert "drift detected and reverted: production back to 10 replicas" in out
    assert "production runs ghcr.io/stefanprodan/podinfo:1.4.1" in out
    assert "$ fluxbus get all -A" in out and "imagepolicy/podinfo" in out
    timeline = tmp_path / "demo-timeline.png"
    assert timeline.is_file() or "timeline unavailable" in out


@pytest.mark.parametrize(
    "overlay", [pytest.param(p.name, id=p.name) for p in (EXAMPLE / "apps" / "overlays").iterdir()]
)
def test_every_overlay_of_the_example_builds_with_kustomize(overlay: str):
    built = subprocess.run(
        [kubectl_binary(), "kustomize", str(EXAMPLE / "apps" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    assert "kind: Deployment" in built.stdout
