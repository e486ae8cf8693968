"""Pure rules of the kustomize service: substitution, generated kustomizations,
the sandbox check, inventory, health and history (apply ordering, policies, drift
rules and object diffs are fluxbus_kube.logic's).

Pure: no I/O.
"""
