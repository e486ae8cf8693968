"""Flux's pure rules for applying to a cluster: apply stages and kind order,
per-object policies, drift ignore rules, dry-run comparison, managed-fields
takeover, and object diffs (what drifted, which fields).

Pure: no I/O.
"""
