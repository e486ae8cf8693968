"""Pure rules of the kustomize service: substitution, generated kustomizations,
the sandbox check, apply ordering, inventory, health and apply policies.

Pure: no I/O.
"""
