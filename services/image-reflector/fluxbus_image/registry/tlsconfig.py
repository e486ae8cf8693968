"""TLS contexts for registries: the system CAs plus `ca.crt`, and a client certificate (mTLS).

Flux extends the system pool with the Secret's CA rather than replacing it
(image-reflector-controller keeps `WithSystemCertPool` for compatibility), so
a custom CA never breaks public registries reached through the same object.
Python's `ssl` loads a certificate chain only from files: the PEM bytes are
written to a private temporary directory, loaded and removed at once. Contexts
are built off the event loop and cached by content.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections import OrderedDict

from fluxbus_image.logic.credentials import RegistryTLS

__all__ = ["SSLContexts", "build_context"]

CACHE_SIZE = 64
"""TLS contexts kept (one per distinct certificate Secret content)."""


def build_context(tls: RegistryTLS) -> ssl.SSLContext:
    """An SSLContext verifying with the system CAs plus `tls.ca`, presenting `tls.cert`/`tls.key`.

    Raises `ssl.SSLError` or ValueError when the PEM material cannot be loaded.
    """
    context = ssl.create_default_context()
    if tls.ca:
        context.load_verify_locations(cadata=tls.ca.decode("ascii", errors="replace"))
    if tls.cert and tls.key:
        with tempfile.TemporaryDirectory(prefix="fluxbus-tls-") as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert, tls.cert), (key, tls.key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            context.load_cert_chain(cert, key)
    return context


class SSLContexts:
    """A small LRU cache of contexts keyed by the TLS material."""

    def __init__(self) -> None:
        self._cache: OrderedDict[RegistryTLS, ssl.SSLContext] = OrderedDict()

    async def get(self, tls: RegistryTLS) -> ssl.SSLContext:
        context = self._cache.get(tls)
        if context is None:
            context = await asyncio.to_thread(build_context, tls)
            self._cache[tls] = context
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(tls)
        return context
