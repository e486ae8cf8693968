"""The helm service: reconciles Flux's `HelmRelease` (helm-controller's twin)."""
