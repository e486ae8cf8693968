"""Safe relative paths for `spec.include` (and, in the Git library, `spec.sparseCheckout`).

Pure: no I/O.

The one validator lives in `fluxbus_git.logic.paths` (sparse checkout needs
it there); this module names it for the source service's own callers.
"""

from __future__ import annotations

from fluxbus_git.logic.paths import safe_relpath

__all__ = ["safe_relpath"]
