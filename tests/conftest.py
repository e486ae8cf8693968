"""Shared pytest fixtures: each package ships its own as a plugin."""

pytest_plugins = [
    "fluxbus_common.testing.plugin",
    "fluxbus_common.testing.nats_cluster",
    "fluxbus_kubelite.testing",
    "fluxbus_git.testing.fixtures",
    "fluxbus_image.testing.fixtures",
    "fluxbus_helmsdk.testing",
]
