"""Pytest fixtures of libs/kubelite (filled by the kubelite issue)."""
