"""The engine's errors: one secret-free line, the failing template found in Helm's
words, and a faithful trip through the worker protocol."""

from __future__ import annotations

import pytest

from fluxbus_helmsdk import (
    HelmEngineError,
    RegistryError,
    Release,
    RenderError,
    WorkerLimitExceeded,
)
from fluxbus_helmsdk.errors import failing_template, from_wire, to_wire


@pytest.mark.parametrize(
    ("message", "template"),
    [
        pytest.param("execution error at (demo/templates/x.yaml:2:4): boom",
                     "demo/templates/x.yaml", id="fail"),
        pytest.param("template: demo/templates/x.yaml:3:4: executing \"demo/templates/x.yaml\" "
                     "at <fail>: error calling fail: boom", "demo/templates/x.yaml", id="template"),
        pytest.param("parse error at (demo/templates/_helpers.tpl:7): function \"nope\" not "
                     "defined", "demo/templates/_helpers.tpl", id="parse"),
        pytest.param("execution error at (demo/charts/db/templates/secret.yaml:1:2): need x",
                     "demo/charts/db/templates/secret.yaml", id="subchart"),
        pytest.param("values don't meet the specifications of the schema(s)", None, id="none"),
    ],
)  # fmt: skip
def test_the_failing_template_is_read_from_helms_message(
    message: str, template: str | None
) -> None:
    assert failing_template(message) == template


def test_messages_are_one_line_without_credentials() -> None:
    error = RegistryError("pull https://bob:hunter2@charts.example.com/x failed:\n  401\n")
    assert str(error) == "pull https://***@charts.example.com/x failed: 401"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RenderError("bad", "demo/templates/x.yaml"), id="render"),
        pytest.param(WorkerLimitExceeded("memory"), id="memory"),
        pytest.param(RegistryError("denied"), id="registry"),
    ],
)
def test_errors_cross_the_worker_pipe_unchanged(error: HelmEngineError) -> None:
    back = from_wire(to_wire(error))
    assert type(back) is type(error)
    assert vars(back) == vars(error)


def test_an_unknown_error_type_arrives_as_the_base_error() -> None:
    back = from_wire({"type": "Mystery", "message": "odd"})
    assert type(back) is HelmEngineError and str(back) == "odd"


def test_a_release_is_read_from_helm_cs_document() -> None:
    doc = {
        "config": {"replicaCount": 3},
        "hooks": [
            {"name": "web-test", "events": ["test"], "last_run": {"phase": "Succeeded"}},
            {"name": "web-migrate", "events": ["pre-install"], "last_run": {"phase": "Succeeded"}},
        ],
        "info": {"first_deployed": "t1", "last_deployed": "t2", "description": "Upgrade complete",
                 "status": "deployed"},
        "summary": {"name": "web", "namespace": "apps", "revision": 2, "status": "deployed",
                    "chart_name": "demo", "chart_version": "0.1.0", "app_version": "1.0",
                    "manifest": "---\n"},
    }  # fmt: skip
    release = Release.from_wire(doc)
    assert release == Release(
        name="web", namespace="apps", revision=2, status="deployed", chart_name="demo",
        chart_version="0.1.0", app_version="1.0", manifest="---\n",
        description="Upgrade complete", first_deployed="t1", last_deployed="t2", deleted=None,
        config={"replicaCount": 3}, test_hooks={"web-test": "Succeeded"},
    )  # fmt: skip
