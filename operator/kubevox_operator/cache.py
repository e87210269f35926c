"""What the watches have seen: the latest body of every watched object, in memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from .metrics import MANAGED_OBJECTS

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


def _rv(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", 0))
    except ValueError:
        return 0


class Cache:
    """kind → (namespace, name) → body (managedFields dropped: they are most of the bytes)."""

    def __init__(self) -> None:
        self._store: dict[str, dict[Key, Obj]] = defaultdict(dict)

    def put(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata", {})
        key = (meta.get("namespace", ""), meta.get("name", ""))
        old = self._store[kind].get(key)
        # A watch event can arrive after our own write's response: keep the newest.
        if (
            old is not None
            and _rv(old) > _rv(obj)
            and old["metadata"].get("uid") == meta.get("uid")
        ):
            return
        meta.pop("managedFields", None)
        self._store[kind][key] = obj
        MANAGED_OBJECTS.labels(kind=kind).set(len(self._store[kind]))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._store[kind].pop((namespace, name), None)
        MANAGED_OBJECTS.labels(kind=kind).set(len(self._store[kind]))

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._store[kind].get((namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> Iterator[Obj]:
        for (ns, _), obj in list(self._store[kind].items()):
            if namespace is None or ns == namespace:
                yield obj

    def with_label(self, kind: str, namespace: str, label: str, value: str) -> list[Obj]:
        return [
            o
            for o in self.items(kind, namespace)
            if o.get("metadata", {}).get("labels", {}).get(label) == value
        ]
