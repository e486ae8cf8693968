"""Composition root of the image-reflector service: wiring only (bus, adapters, the
reconcilers, served by `fluxbus_common.service.run_service`)."""
