"""The `fluxbus` command line: apply, get, reconcile, suspend/resume, delete,
events, export, create secret, check and version, shaped like `flux` and `kubectl`."""
