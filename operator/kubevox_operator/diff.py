"""Does a live object already carry what we would apply? Decides whether to write at all.

Server-side apply is idempotent, but an apply is still a write request (and an audit event).
The operator only applies when the live object differs from the desired one on a field the
operator sets; fields others set (defaults, status, other managers) are ignored.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def _quantity(value: Any) -> Decimal | None:
    if not isinstance(value, str | int):
        return None
    m = _QUANTITY.match(str(value))
    if not m or m.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live``.

    Empty desired values match absent live ones (the API server omits them); quantities
    compare by value (``1000m`` == ``1``); lists compare element-wise, in order.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return _empty(desired) and _empty(live)
        return all(contains(live.get(k), v) if k in live else _empty(v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list):
            return _empty(desired) and _empty(live)
        return len(live) == len(desired) and all(
            contains(a, b) for a, b in zip(live, desired, strict=True)
        )
    if live == desired:
        return True
    if isinstance(desired, str) and isinstance(live, str | int):
        a, b = _quantity(live), _quantity(desired)
        return a is not None and a == b
    return False
