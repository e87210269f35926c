"""The shape of the code (issue #16): no Python module over 400 lines, and no import cycle between
the modules of the four packages (an import at module level; a function's late import is how a
cycle gets broken on purpose, and there are none today either)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "kubevox_api": REPO / "operator/kubevox_api",
    "kubevox_operator": REPO / "operator/kubevox_operator",
    "agent_runtime": REPO / "agent_runtime",
    "kubevox_devenv": REPO / "hack/devenv/kubevox_devenv",
}
CODE = [*PACKAGES.values(), REPO / "bench", REPO / "tests"]
MOST_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the four packages."""
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules ``name`` imports at module level (not under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # ``from pkg import submodule`` needs the submodule; ``from pkg import name``, pkg.
            subs = {f"{base}.{a.name}" for a in node.names} & known
            out |= subs if len(subs) == len(node.names) else {*subs, base}
    return (out & known) - {name}


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for root in CODE
        for path in root.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}


def test_no_import_cycle() -> None:
    found = modules()
    graph = {name: imported(name, path, set(found)) for name, path in found.items()}
    assert len(graph) > 100  # the walk found the packages
    assert any(graph.values())  # and their imports
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None
