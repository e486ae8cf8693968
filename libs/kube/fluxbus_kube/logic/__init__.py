"""Flux's pure rules for applying to a cluster: apply stages and kind order,
per-object policies, drift ignore rules, dry-run comparison and managed-fields
takeover.

Pure: no I/O.
"""
