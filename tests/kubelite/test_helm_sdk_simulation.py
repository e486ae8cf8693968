"""The simulation rules Helm hooks and tests rely on: run-to-completion Pods, Jobs and their logs."""

from __future__ import annotations

from typing import Any

import pytest
from kubelite_helpers import Raw, await_until, deployment

from fluxbus_kubelite.statuses import Run, run_container


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            ["sh", "-c", "echo checking; exit 1"], Run(1, "checking\n"), id="echo then exit"
        ),
        pytest.param(
            ["/bin/bash", "-c", "echo 'a; b'\nfalse"],
            Run(1, "a; b\n"),
            id="quoted words, newline, false",
        ),
        pytest.param(
            ["sh", "-c", "false || echo recovered"],
            Run(0, "recovered\n"),
            id="or runs after a failure",
        ),
        pytest.param(
            ["sh", "-c", "false && echo never"], Run(1, ""), id="and skips after a failure"
        ),
        pytest.param(["sh", "-c", "true && exit 300"], Run(44, ""), id="exit codes wrap at 256"),
        pytest.param(
            ["sh", "-c", "exit 2; echo unreachable"], Run(2, ""), id="exit stops the script"
        ),
        pytest.param(
            ["sh", "-c", "echo 'unbalanced"], Run(2, ""), id="a script the shell cannot parse"
        ),
        pytest.param(["false"], Run(1, ""), id="a plain failing command"),
        pytest.param(["wget", "-q", "http://web"], Run(0, ""), id="any other command succeeds"),
        pytest.param([], Run(0, ""), id="the image's own entrypoint succeeds"),
    ],
)
def test_a_container_runs_its_echo_and_exit_commands(command: list[str], expected: Run) -> None:
    assert run_container({"name": "c", "image": "busybox:1", "command": command}) == expected


def pod(name: str, policy: str, *scripts: str, image: str = "busybox:1") -> dict[str, Any]:
    containers = [
        {"name": f"c{i}", "image": image, "command": ["sh", "-c", script]}
        for i, script in enumerate(scripts)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": policy, "containers": containers},
    }


async def status_when(raw: Raw, path: str, field: str) -> dict[str, Any]:
    """The object's status once `field` is set in it."""

    async def ready() -> dict[str, Any] | None:
        status, obj, _ = await raw("GET", path)
        assert status == 200
        st = obj.get("status") or {}
        return st if st.get(field) and st.get("containerStatuses") else None

    found: dict[str, Any] = await await_until(ready, timeout=10)
    return found


@pytest.mark.parametrize(
    ("policy", "script", "phase", "state"),
    [
        pytest.param("Never", "echo ok", "Succeeded", "terminated", id="never restarted, succeeds"),
        pytest.param("Never", "exit 7", "Failed", "terminated", id="never restarted, fails"),
        pytest.param(
            "OnFailure", "exit 7", "Running", "waiting", id="restarted on failure, crash loops"
        ),
        pytest.param("Always", "echo serving", "Running", "running", id="a server keeps running"),
        pytest.param("Always", "exit 7", "Running", "waiting", id="a failing server crash loops"),
    ],
)
async def test_a_pod_phase_follows_its_restart_policy_and_exit_code(
    raw: Raw, ns: str, policy: str, script: str, phase: str, state: str
) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    assert (await raw("POST", path, pod("p", policy, script)))[0] == 201

    status = await status_when(raw, f"{path}/p", "phase")

    assert status["phase"] == phase
    assert list(status["containerStatuses"][0]["state"]) == [state]


async def test_pod_logs_are_what_the_container_echoes(raw: Raw, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    await raw("POST", path, pod("two", "Never", "echo one; echo two; echo three", "echo other"))
    await status_when(raw, f"{path}/two", "phase")

    status, text, headers = await raw("GET", f"{path}/two/log", params={"container": "c0"})
    assert (status, text) == (200, "one\ntwo\nthree\n")
    assert headers["Content-Type"].startswith("text/plain")
    _, tail, _ = await raw("GET", f"{path}/two/log", params={"container": "c0", "tailLines": "1"})
    assert tail == "three\n"
    status, body, _ = await raw("GET", f"{path}/two/log")
    assert (status, body["message"]) == (
        400,
        "a container name must be specified for pod two, choose one of: [c0 c1]",
    )


async def test_a_container_that_never_started_has_no_logs(raw: Raw, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/pods"
    await raw("POST", path, pod("stuck", "Never", "echo hi", image="busybox:broken"))
    await status_when(raw, f"{path}/stuck", "phase")

    status, body, _ = await raw("GET", f"{path}/stuck/log")

    assert (status, body["message"]) == (
        400,
        'container "c0" in pod "stuck" is waiting to start: ImagePullBackOff',
    )


@pytest.mark.parametrize(
    ("script", "condition", "counts"),
    [
        pytest.param(
            "echo done", "Complete", {"succeeded": 1}, id="a succeeding template completes"
        ),
        pytest.param(
            "exit 1", "Failed", {"failed": 3}, id="a failing template exhausts its backoff limit"
        ),
    ],
)
async def test_a_job_completes_or_fails_as_its_template_runs(
    raw: Raw, ns: str, script: str, condition: str, counts: dict[str, int]
) -> None:
    template = pod("t", "Never", script)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"backoffLimit": 2, "template": {"spec": template["spec"]}},
    }
    path = f"/apis/batch/v1/namespaces/{ns}/jobs"
    assert (await raw("POST", path, job))[0] == 201

    async def finished() -> dict[str, Any] | None:
        st = (await raw("GET", f"{path}/j"))[1].get("status") or {}
        return st if st.get("conditions") else None

    status = await await_until(finished, timeout=10)
    assert {c["type"] for c in status["conditions"] if c["status"] == "True"} >= {condition}
    assert {k: status.get(k) for k in counts} == counts


@pytest.mark.parametrize(
    ("script", "available"),
    [
        pytest.param("echo serving", "True", id="a serving template becomes available"),
        pytest.param("echo bad config; exit 1", "False", id="a crashing template never does"),
    ],
)
async def test_a_deployment_is_available_unless_its_containers_exit_non_zero(
    raw: Raw, ns: str, script: str, available: str
) -> None:
    web = deployment("web", "nginx:1.25", replicas=1)
    web["spec"]["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", script]
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    assert (await raw("POST", path, web))[0] == 201

    async def observed() -> dict[str, Any] | None:
        st = (await raw("GET", f"{path}/web"))[1].get("status") or {}
        return st if st.get("conditions") else None

    status = await await_until(observed, timeout=10)
    assert {c["type"]: c["status"] for c in status["conditions"]}["Available"] == available
