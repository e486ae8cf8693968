"""Artifacts of the bus: source tarballs streamed into and out of the JetStream
object store, never held whole in memory."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import BinaryIO

import nats.errors
import nats.js.errors as jserrors
from nats.js.object_store import ObjectStore

from fluxbus_common.bus.connection import Connection
from fluxbus_common.ports import BusError
from fluxbus_common.tasks import cancel_and_wait


class Artifacts(Connection):
    """Named artifacts in the object store (names from `subjects.artifact_name`)."""

    @property
    def _artifacts(self) -> ObjectStore:
        assert self._store is not None, "set by Connection.connect"
        return self._store

    async def put_artifact(self, name: str, path: Path) -> int:
        """Stream a file into the artifact store under `name`; return its size."""
        try:
            with path.open("rb") as fh:
                info = await self._artifacts.put(name, fh)
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            raise BusError(f"store artifact {name}: {err}") from err
        return int(info.size or 0)

    async def get_artifact(self, name: str, dest: Path) -> None:
        """Stream an artifact into `dest` (never held whole in memory).

        The download fails (BusError) when no chunk arrives for twice the
        request timeout: nats-py's chunk loop has no deadline of its own, and a
        server that stops answering would otherwise hang the reader for good.
        A failed download leaves no partial file behind.

        Raises KeyError when the artifact does not exist.
        """
        idle = max(1.0, self._request_timeout * 2)
        progress = _Progress()
        try:
            with dest.open("wb") as fh:
                writer = _CountingWriter(fh, progress)
                download = asyncio.ensure_future(
                    # nats-py wants a BufferedIOBase; it only calls write() on it
                    self._artifacts.get(name, writeinto=writer)  # type: ignore[arg-type]
                )
                while not download.done():
                    before = progress.bytes
                    done, _ = await asyncio.wait({download}, timeout=idle)
                    if not done and progress.bytes == before:
                        await cancel_and_wait(download)
                        raise BusError(
                            f"fetch artifact {name}: no data for {idle:.0f}s "
                            f"after {progress.bytes} bytes"
                        )
                download.result()
        except jserrors.ObjectNotFoundError as err:
            _discard(dest)
            raise KeyError(name) from err
        except nats.errors.Error as err:  # JetStream's errors derive from it too
            _discard(dest)
            raise BusError(f"fetch artifact {name}: {err}") from err
        except BaseException:
            _discard(dest)
            raise

    async def put_blob(self, name: str, data: bytes) -> None:
        """Store a small document (e.g. an image tag list) under `name`, replacing it.

        The object store chunks it, so it may exceed NATS' 1 MB message limit.
        """
        try:
            await self._artifacts.put(name, data)
        except nats.errors.Error as err:
            raise BusError(f"store {name}: {err}") from err

    async def get_blob(self, name: str) -> bytes | None:
        """Return a document stored with `put_blob`, or None when there is none.

        Bounded like every request (a server that stops answering is a BusError).
        """
        try:
            async with asyncio.timeout(max(1.0, self._request_timeout * 4)):
                result = await self._artifacts.get(name)
        except (jserrors.ObjectNotFoundError, jserrors.ObjectDeletedError, jserrors.NotFoundError):
            return None
        except TimeoutError as err:
            raise BusError(f"fetch {name}: timed out") from err
        except nats.errors.Error as err:
            raise BusError(f"fetch {name}: {err}") from err
        if result.info.deleted:
            return None
        return bytes(result.data or b"")

    async def artifact_size(self, name: str) -> int | None:
        """Return the stored size of an artifact, or None when it does not exist."""
        try:
            info = await self._artifacts.get_info(name)
        except (jserrors.ObjectNotFoundError, jserrors.ObjectDeletedError, jserrors.NotFoundError):
            return None
        except nats.errors.Error as err:
            raise BusError(f"stat artifact {name}: {err}") from err
        return None if info.deleted else int(info.size or 0)

    async def delete_artifact(self, name: str) -> None:
        """Delete an artifact (absent is fine)."""
        with contextlib.suppress(jserrors.ObjectNotFoundError, jserrors.NotFoundError):
            await self._artifacts.delete(name)

    async def list_artifacts(self, prefix: str = "") -> list[str]:
        """Return the names of stored artifacts starting with `prefix`, sorted by name."""
        try:
            infos = await self._artifacts.list()
        except jserrors.NotFoundError:
            return []
        except nats.errors.Error as err:
            raise BusError(f"list artifacts: {err}") from err
        return sorted(
            i.name for i in infos if i.name and i.name.startswith(prefix) and not i.deleted
        )


def _discard(path: Path) -> None:
    """Remove a partial download (one unlink: cheap enough for the event loop)."""
    path.unlink(missing_ok=True)


class _Progress:
    """Bytes written so far by a download (read by its watchdog)."""

    def __init__(self) -> None:
        self.bytes = 0


class _CountingWriter:
    """A file wrapper counting what nats-py writes into it (from its executor)."""

    def __init__(self, fh: BinaryIO, progress: _Progress) -> None:
        self._fh = fh
        self._progress = progress

    def write(self, data: bytes) -> int:
        n = self._fh.write(data)
        self._progress.bytes += n
        return n
