"""Run an Argo CD health check (a Lua chunk reading the global ``obj``) in a real Lua
interpreter, the way Argo CD does: the object becomes a Lua table, the chunk's return value is
the health status."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.support.tools import run


def _string(value: str) -> str:
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:  # decimal escapes are read the same way by Lua 5.1 through 5.4
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua expression for a JSON-like value (None becomes nil, lists become sequences)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{_string(str(k))}] = {to_lua(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    # YAML timestamps and the like reach Argo CD as strings.
    return _string(str(value))


DRIVER = """
obj = {obj}
local chunk = assert(loadfile({script}))
local hs = chunk()
io.write(tostring(hs.status), "\\n", tostring(hs.message))
"""


def health(interpreter: str, script: Path, obj: dict[str, Any]) -> dict[str, str]:
    """Evaluate the health check ``script`` on ``obj`` with ``interpreter`` (e.g. lua5.1)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(DRIVER.format(obj=to_lua(obj), script=_string(str(script))))
        driver = Path(f.name)
    try:
        proc = run([interpreter, driver], timeout=30)
    finally:
        driver.unlink()
    assert proc.returncode == 0, f"{interpreter} {script}: {proc.stderr}"
    status, _, message = proc.stdout.partition("\n")
    return {"status": status, "message": message}
