"""Pure rules of the kustomize service: substitution, generated kustomizations,
the sandbox check, inventory, health and history (apply ordering, policies and
drift rules are fluxbus_kube.logic's).

Pure: no I/O.
"""
