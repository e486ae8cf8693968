"""The one CEL environment: compile errors are typed, evaluation errors are false."""

from __future__ import annotations

from typing import Any

import pytest

from fluxbus_common import cel


@pytest.mark.parametrize(
    ("expr", "variables", "expected"),
    [
        pytest.param("self.ready == true", {"self": {"ready": True}}, True, id="true"),
        pytest.param("self.ready == true", {"self": {"ready": False}}, False, id="false"),
        pytest.param("self.missing.field == 1", {"self": {}}, False, id="missing-field"),
        pytest.param("self.count", {"self": {"count": 3}}, False, id="not-a-boolean"),
        pytest.param(
            "dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')",
            {"dep": {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}},
            True,
            id="macro-over-conditions",
        ),
    ],
)
def test_expressions_are_true_only_when_they_evaluate_to_true(
    expr: str, variables: dict[str, Any], expected: bool
) -> None:
    program = cel.compile_program(expr)
    assert cel.evaluate_bool(program, cel.activation(variables)) is expected


def test_an_expression_that_does_not_parse_raises_cel_error() -> None:
    with pytest.raises(cel.CelError):
        cel.compile_program("self.ready ==")
