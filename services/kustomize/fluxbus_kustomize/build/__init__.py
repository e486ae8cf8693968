"""Build adapter: artifact tarball → rendered, substituted Kubernetes objects.

- `tree`: verify and extract the artifact privately (the format and its limits
  are `fluxbus_common.artifact`'s), read its kustomizations, sandbox-check
  every kustomization a build reaches;
- `kustomize`: the generated kustomization and spec overrides, running the
  wheel's `kubectl kustomize`, parsing its output, post-build substitution and
  `commonMetadata`;
- `cache`: `RenderCache`, keyed by the content kustomize reads;
- `builder`: `Builder`, which runs those steps (blocking ones in a thread).

The kustomize reconciler imports `Builder`, `BuildError`, `BuildSpec` and
`RenderCache` from here.
"""

from __future__ import annotations

from fluxbus_kustomize.build.builder import Builder, BuildLimits, build
from fluxbus_kustomize.build.cache import Render, RenderCache, content_key
from fluxbus_kustomize.build.errors import ArtifactRefusedError, BuildError, PostBuildError
from fluxbus_kustomize.build.kustomize import find_kubectl
from fluxbus_kustomize.logic.buildspec import BuildSpec

__all__ = [
    "ArtifactRefusedError",
    "BuildError",
    "BuildLimits",
    "BuildSpec",
    "Builder",
    "PostBuildError",
    "Render",
    "RenderCache",
    "build",
    "content_key",
    "find_kubectl",
]
