"""Locating (and building once) the real tools the deploy tests drive.

Each tool comes from its registry through a script under hack/tools that caches it in
~/.cache/kubevox and prints its directory; a tool that cannot be obtained skips its tests with a
reason naming the script (never a silent pass).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "hack" / "tools"
MANIFESTS = REPO / "manifests"
CHART = MANIFESTS / "helm" / "kubevox"

# Debian packages: lua5.1 is the dialect Argo CD's gopher-lua implements; 5.4 catches scripts
# that only work by accident of one version.
LUA_INTERPRETERS = ("lua5.1", "lua5.3", "lua5.4")


@functools.cache
def _script_dir(script: str) -> Path | str:
    """Run hack/tools/<script>; return the directory it prints, or why it failed."""
    proc = subprocess.run(
        ["bash", str(TOOLS / script)], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode != 0:
        return f"hack/tools/{script} failed: {proc.stderr.strip()[-2000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def tool_dir(script: str) -> Path:
    """The directory printed by hack/tools/<script>, or skip the test saying why."""
    got = _script_dir(script)
    if isinstance(got, str):
        pytest.skip(got)
    return got


def helm() -> Path:
    return tool_dir("build-helm.sh") / "helm"


def terraform() -> Path:
    return tool_dir("build-terraform.sh") / "terraform"


def checkov() -> Path:
    return tool_dir("build-checkov.sh") / "checkov"


def promtool() -> Path:
    return tool_dir("build-promtool.sh") / "promtool"


def promtool_test(
    tmp_path: Path, rules: dict[str, str], tests: list[dict[str, Any]], interval: str = "15s"
) -> None:
    """PromQL evaluated by Prometheus' own engine: ``rules`` (record name → expression) and
    promtool's unit ``tests`` of them (input series, expected samples), which must pass."""
    group = {
        "name": "kubevox",
        "interval": interval,
        "rules": [{"record": name, "expr": expr} for name, expr in rules.items()],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": interval, "tests": tests}
        )
    )
    proc = run([promtool(), "test", "rules", tmp_path / "test.yaml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def third_party() -> Path:
    """CRDs of prometheus-operator, KEDA and Argo CD, and Argo CD's KServe health check."""
    return tool_dir("fetch-third-party.sh")


def lua_interpreters() -> list[str]:
    return [name for name in LUA_INTERPRETERS if shutil.which(name)]


def run(
    argv: list[str | Path],
    *,
    cwd: Path | None = None,
    timeout: float = 300,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        input=input,
        env=env,
        check=False,
    )
