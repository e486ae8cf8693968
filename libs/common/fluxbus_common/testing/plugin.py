"""Pytest fixtures shared by the whole suite: real nats-server, temp dirs."""
