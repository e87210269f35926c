"""Asking the API server what a user may do (``kubectl auth can-i``), for the RBAC and privilege
tests of this suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def can_i(
    kubectl: Callable[..., Any], user: str, verb: str, resource: str, namespace: str, name: str = ""
) -> bool:
    """``kubectl auth can-i`` as ``user``; ``resource`` may be ``type/subresource``."""
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    kind, _, sub = resource.partition("/")
    target = f"{kind}/{name}" if name else kind
    extra = [f"--subresource={sub}"] if sub else []
    out = kubectl("auth", "can-i", verb, target, *scope, f"--as={user}", *extra)
    assert out.stdout.strip() in ("yes", "no"), out.stderr
    return bool(out.stdout.strip() == "yes")
