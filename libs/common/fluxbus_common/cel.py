"""The one CEL environment of fluxbus (cel-python), for the expressions Flux's
API accepts: a Kustomization's `dependsOn[].readyExpr` and its
`healthCheckExprs`.

`compile_program(source)` compiles once (raises `CelError` on a syntax
error, so callers can turn it into a Stalled condition); `activation(doc)`
turns JSON-like values into CEL values; `evaluate_bool(program, activation)`
is true only when the expression evaluates to the boolean true. An
evaluation error (a missing field, a type mismatch) counts as false, as in
Flux: the object or dependency simply is not there yet.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import celpy
from celpy import celtypes

__all__ = ["CelError", "Program", "activation", "compile_program", "evaluate_bool"]

Program = Any
"""A compiled cel-python program (celpy ships no type hints)."""

_ENV = celpy.Environment()
"""Built once: creating an Environment builds the CEL grammar, which is slow."""


class CelError(ValueError):
    """A CEL expression that does not compile; the message carries celpy's reason."""


def compile_program(source: str) -> Program:
    """Return the compiled program of a CEL expression.

    Raises CelError when the expression does not parse or type-check.
    """
    try:
        return _ENV.program(_ENV.compile(source))
    except Exception as e:  # celpy raises its own parse errors, not a common base
        raise CelError(str(e)) from None


def activation(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the CEL activation of JSON-like top-level variables (`{"self": {...}}`)."""
    return {str(k): celpy.json_to_cel(v) for k, v in values.items()}


def evaluate_bool(program: Program, variables: Mapping[str, Any]) -> bool:
    """Return whether `program` evaluates to true in an activation built by `activation()`.

    Any evaluation error, or a result that is not a boolean, is false.
    """
    try:
        result = program.evaluate(variables)
    except Exception:  # CELEvalError and friends: a missing field means "not yet"
        return False
    return isinstance(result, bool | celtypes.BoolType) and bool(result)
