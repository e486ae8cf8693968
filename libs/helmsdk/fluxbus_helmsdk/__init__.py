"""Helm's own engine for fluxbus: the one adapter over `helm-python-sdk` (the
optional `fluxbus[helm]` extra) and the worker processes that run Helm actions
with memory and time limits."""
