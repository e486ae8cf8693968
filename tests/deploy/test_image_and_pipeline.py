"""The image and the release pipeline: deploy/Dockerfile is multi-stage, ships
openssh-client and runs unprivileged; .dockerignore keeps tests, venvs and caches
out; the workflows pin every action by commit, grant permissions per job only,
never run pull_request_target, test on 3.11 and 3.12, and release by pushing to
GHCR with the job's token and signing the digest keylessly. (actionlint and zizmor
check the workflows in `make lint`.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from deploy_manifests import DEPLOY, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def workflow(name: str) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1)
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True)
    return doc


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest)
        for line in lines
        if line and not line.startswith("#")
        for word, _, rest in [line.partition(" ")]
    ]


def test_the_image_is_built_in_stages_and_runs_unprivileged():
    instructions = dockerfile_instructions()
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    final = instructions[[w for w, _ in instructions].index("FROM", 1) :]
    user = [rest for word, rest in final if word == "USER"]
    assert user == ["65532:65532"]
    run = " ".join(rest for word, rest in final if word == "RUN")
    assert "openssh-client" in run and "--no-install-recommends" in run
    assert ("COPY", "--from=build /opt/fluxbus /opt/fluxbus") in final


@pytest.mark.parametrize(
    "kept_out",
    [
        pytest.param(p, id=p)
        for p in ("tests", "**/.venv", "**/__pycache__", ".git", "**/.mypy_cache")
    ],
)
def test_dockerignore_keeps_tests_venvs_and_caches_out(kept_out: str):
    assert kept_out in (ROOT / ".dockerignore").read_text().splitlines()


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in ("ci.yaml", "release.yaml")])
def test_workflows_pin_actions_by_commit_and_grant_permissions_per_job(name: str):
    doc = workflow(name)
    assert "pull_request_target" not in doc["on"]
    assert doc["permissions"] == {}
    for job_name, job in doc["jobs"].items():
        assert "permissions" in job, job_name
        for step in job.get("steps", []):
            if "uses" in step:
                assert PINNED.match(step["uses"]), step["uses"]
                if "actions/checkout" in step["uses"]:
                    assert step["with"]["persist-credentials"] is False


def test_ci_lints_and_tests_on_both_pythons_with_a_pip_cache():
    jobs = workflow("ci.yaml")["jobs"]
    assert jobs["test"]["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    for job in jobs.values():
        setup = next(s for s in job["steps"] if "setup-python" in s.get("uses", ""))
        assert setup["with"]["cache"] == "pip"
    runs = [s.get("run") for job in jobs.values() for s in job["steps"]]
    assert "make lint" in runs and "make test" in runs


def test_release_tests_first_then_pushes_to_ghcr_with_the_job_token_and_signs_the_digest():
    doc = workflow("release.yaml")
    assert doc["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    jobs = doc["jobs"]
    assert jobs["ci"]["uses"].endswith("/.github/workflows/ci.yaml")
    image = jobs["image"]
    assert image["needs"] == "ci"
    assert image["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    steps = {s["uses"].split("@")[0]: s for s in image["steps"] if "uses" in s}
    login = steps["docker/login-action"]["with"]
    assert login["registry"] == "ghcr.io" and login["password"] == "${{ secrets.GITHUB_TOKEN }}"
    build = steps["docker/build-push-action"]["with"]
    assert build["file"] == "deploy/Dockerfile" and build["push"] is True
    assert "sigstore/cosign-installer" in steps and "anchore/sbom-action" in steps
    runs = " ".join(s.get("run", "") for s in image["steps"])
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in runs
    assert "cosign attest --yes --type spdxjson" in runs
    assert image["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"
    # nothing in CI reaches a cluster
    text = (WORKFLOWS / "release.yaml").read_text() + (WORKFLOWS / "ci.yaml").read_text()
    assert "kubectl" not in text and "KUBECONFIG" not in text


def test_only_the_files_named_here_are_workflows():
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == ["ci.yaml", "release.yaml"]
