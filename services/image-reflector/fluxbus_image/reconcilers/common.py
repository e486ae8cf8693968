"""What the image reconcilers share: reading another kind's object with its status,
and the cross-namespace rule of `spec.accessFrom`.

Adapter-free: everything goes through the `ImageStore` port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fluxbus_common import subjects
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError

T = TypeVar("T")


async def read_object(
    store: Any, kind: str, namespace: str, name: str, parse: Callable[[dict[str, Any]], T]
) -> T | None:
    """Return an object of another kind with its status merged in, or None when absent.

    Raises Generic when the store cannot be read; ValueError when the stored
    document does not validate.
    """
    key = subjects.object_key(kind, namespace, name)
    try:
        entry = await store.get_object(key)
        if entry is None:
            return None
        status = await store.get_status(key)
    except BusError as e:
        raise Generic(f"reading {kind} '{namespace}/{name}' failed: {e}") from e
    return parse({**entry.value, "status": status.value if status else {}})


def cross_namespace_allowed(access_from: Any, from_namespace: str, to_namespace: str) -> bool:
    """Whether an object in `from_namespace` may reference one in `to_namespace`.

    Same namespace: always. Otherwise the target must grant it with
    `spec.accessFrom.namespaceSelectors`; fluxbus keeps no Namespace labels, so
    only a selector without labels (every namespace) can match.
    """
    if from_namespace == to_namespace:
        return True
    if access_from is None:
        return False
    return any(not (sel.match_labels or {}) for sel in access_from.namespace_selectors)
