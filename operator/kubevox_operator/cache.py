"""What the watches have seen: the latest body of every watched object, in memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from .metrics import MANAGED_OBJECTS

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)
LabelKey = tuple[str, str, str, str]  # (kind, namespace, label, value)
UNREAD = {"Pod": ("spec",)}
"""Parts of a kind's objects the controller never reads, not kept: a pod's status and metadata
say all it needs (readiness, active calls, a Job's result), its spec is most of its bytes."""


def _rv(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion", 0))
    except ValueError:
        return 0


class Cache:
    """kind → (namespace, name) → body (managedFields dropped: they are most of the bytes)."""

    def __init__(self) -> None:
        self._store: dict[str, dict[Key, Obj]] = defaultdict(dict)
        # Names by label value: an agent's pods are found without scanning every pod (a scan
        # per reconcile made a burst of N agents cost N² in the profile).
        self._by_label: dict[LabelKey, set[str]] = defaultdict(set)

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
        for part in UNREAD.get(kind, ()):
            obj.pop(part, None)
        if old is not None:
            self._unindex(kind, key, old)
        self._store[kind][key] = obj
        for label, value in (meta.get("labels") or {}).items():
            self._by_label[kind, key[0], label, value].add(key[1])
        MANAGED_OBJECTS.labels(kind=kind).set(len(self._store[kind]))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        old = self._store[kind].pop((namespace, name), None)
        if old is not None:
            self._unindex(kind, (namespace, name), old)
        MANAGED_OBJECTS.labels(kind=kind).set(len(self._store[kind]))

    def _unindex(self, kind: str, key: Key, obj: Obj) -> None:
        for label, value in (obj.get("metadata", {}).get("labels") or {}).items():
            names = self._by_label.get((kind, key[0], label, value))
            if names is not None:
                names.discard(key[1])
                if not names:
                    del self._by_label[kind, key[0], label, value]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._store[kind].get((namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> Iterator[Obj]:
        for (ns, _), obj in list(self._store[kind].items()):
            if namespace is None or ns == namespace:
                yield obj

    def with_label(self, kind: str, namespace: str, label: str, value: str) -> list[Obj]:
        store = self._store[kind]
        names = sorted(self._by_label.get((kind, namespace, label, value), ()))
        return [store[namespace, n] for n in names]
