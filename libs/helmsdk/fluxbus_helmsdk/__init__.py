"""Helm's own engine for fluxbus: the one adapter over `helm-python-sdk` (the
optional `fluxbus[helm]` extra) and the worker processes that run Helm actions
with memory and time limits.

Import everything from here: `HelmEngine`, `available()`, the errors and the
dataclasses. Test support lives in `fluxbus_helmsdk.testing` (a pytest plugin).
"""

from .engine import HelmEngine, available
from .errors import (
    ChartLoadError,
    HelmEngineError,
    HelmUnavailable,
    KubeUnreachable,
    RegistryError,
    ReleaseError,
    ReleaseNotFound,
    RenderError,
    ValuesError,
    WorkerCrashed,
    WorkerLimitExceeded,
)
from .models import ChartInfo, KubeTarget, RegistryAuth, Release, TestResult, WorkerLimits

__all__ = [
    "ChartInfo",
    "ChartLoadError",
    "HelmEngine",
    "HelmEngineError",
    "HelmUnavailable",
    "KubeTarget",
    "KubeUnreachable",
    "RegistryAuth",
    "RegistryError",
    "Release",
    "ReleaseError",
    "ReleaseNotFound",
    "RenderError",
    "TestResult",
    "ValuesError",
    "WorkerCrashed",
    "WorkerLimitExceeded",
    "WorkerLimits",
    "available",
]
