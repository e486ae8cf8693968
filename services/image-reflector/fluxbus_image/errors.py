"""Typed errors of the image-reflector service (subclasses of `fluxbus_common.errors`'s
Stalling / Waiting / Generic, each with its Flux reason).

Pure: no I/O.
"""
