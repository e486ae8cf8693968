"""Artifacts of the bus: source tarballs streamed into and out of the JetStream
object store, never held whole in memory."""

from __future__ import annotations

import contextlib
from pathlib import Path

import nats.errors
import nats.js.errors as jserrors
from nats.js.object_store import ObjectStore

from fluxbus_common.bus.connection import Connection
from fluxbus_common.ports import BusError


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

        Raises KeyError when the artifact does not exist.
        """
        try:
            with dest.open("wb") as fh:
                await self._artifacts.get(name, writeinto=fh)
        except jserrors.ObjectNotFoundError as err:
            raise KeyError(name) from err
        except nats.errors.Error as err:
            raise BusError(f"fetch artifact {name}: {err}") from err

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
