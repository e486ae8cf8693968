"""Pytest fixtures serving real Git repositories (smart HTTP, HTTPS, SSH)."""
