"""fluxbus_common: what every fluxbus service shares.

API models, condition and name constants, the NATS bus adapter, the
controller runtime, logging, settings and metrics. Imports no service.
"""
