"""Test support of the notifier service (stand-in endpoints for the providers)."""
