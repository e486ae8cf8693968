"""Composition root of the notifier service: wiring only (bus, adapters, the
reconcilers, served by `fluxbus_common.service.run_service`)."""
