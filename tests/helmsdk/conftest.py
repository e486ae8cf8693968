"""Helm engine tests: the fixtures of fluxbus_helmsdk.testing (until tests/conftest.py
registers it as a plugin), and chart archives built once per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxbus_helmsdk.testing import (  # noqa: F401 - fixtures
    chart_repo,
    chart_repo_factory,
    helm_engine,
    make_chart,
    package_chart,
)


@pytest.fixture
def demo_chart(tmp_path: Path) -> bytes:
    """The default test chart `demo` 0.1.0, packaged."""
    chart = make_chart(tmp_path / "src", "demo")
    return package_chart(chart, tmp_path / "dist").read_bytes()
