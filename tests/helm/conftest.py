"""Fixtures of the helm service tests: the chart repositories of
`fluxbus_helmsdk.testing` (imported: only the root conftest lists plugins)."""

from fluxbus_helmsdk.testing import chart_repo, chart_repo_factory, helm_engine

__all__ = ["chart_repo", "chart_repo_factory", "helm_engine"]
