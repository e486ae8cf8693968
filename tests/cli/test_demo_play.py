"""`make play`'s printed commands work from any directory: absolute paths, the
clone outside the checkout, and a commit that needs no Git identity on the machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fluxbus_cli.demo import ROOT, play_commands, serve_example


def test_every_path_printed_by_make_play_is_absolute_and_outside_the_checkout(tmp_path: Path):
    commands = play_commands(
        "nats://127.0.0.1:4222",
        ".state/demo/kubeconfig",
        "http://127.0.0.1:8080/gitops-repo.git",
        Path(".venv/bin"),
        tmp_path / "fleet",
    )
    text = "\n".join(command for command, _ in commands)

    assert "$PWD" not in text and " cd " not in text
    assert f"KUBECONFIG={Path('.state/demo/kubeconfig').resolve()}" in text
    assert f"PATH={Path('.venv/bin').resolve()}:$PATH" in text
    assert f"{tmp_path}/fleet" in text and not (tmp_path / "fleet").is_relative_to(ROOT)


def test_the_git_commands_of_make_play_change_the_served_repository_from_another_directory(
    tmp_path: Path,
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # A machine with no Git identity: the clone must bring its own.
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    with serve_example(tmp_path / "served") as (sha, url):
        commands = play_commands(
            "nats://x:4222", "/k", url, Path(sys.executable).parent, tmp_path / "fleet"
        )
        for command, _ in commands:
            if re.match(r"(git|sed) ", command):
                done = subprocess.run(
                    ["bash", "-c", command], cwd=elsewhere, env=env, capture_output=True, text=True
                )
                assert done.returncode == 0, f"{command}: {done.stderr}"
        heads = subprocess.run(
            ["git", "ls-remote", url, "refs/heads/main"], env=env, capture_output=True, text=True
        )
        check = tmp_path / "check"
        subprocess.run(["git", "clone", "-q", url, str(check)], env=env, check=True)

    assert heads.stdout.split()[0] != sha
    overlay = (check / "apps" / "overlays" / "staging" / "kustomization.yaml").read_text()
    assert "count: 3" in overlay
    assert list(elsewhere.iterdir()) == []
