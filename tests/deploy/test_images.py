"""The two Dockerfiles, checked without a Docker engine: what they copy exists, the programs
they run exist and start in the repository's own environment, they agree with the pod specs
(user, ports, command), they install the lock, and the operator image's install gives a working
operator without the voice stack."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from kubevox_api import contract
from kubevox_operator.builders.common import restricted_pod_security

from tests.support.tools import REPO, run

from .render import by_key

OPERATOR = REPO / "operator" / "Dockerfile"
RUNTIME = REPO / "agent_runtime" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    ins = _instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def _json(dockerfile: Path, op: str) -> list[str]:
    (value,) = [rest for o, rest in _final_stage(dockerfile) if o == op]
    parsed: list[str] = json.loads(value)
    return parsed


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=lambda p: p.parent.name)
def test_copied_paths_exist_and_images_are_pinned(dockerfile: Path) -> None:
    ins = _instructions(dockerfile)
    copies = [rest for op, rest in ins if op == "COPY" and not rest.startswith("--from")]
    sources = [src for c in copies for src in shlex.split(c)[:-1]]
    assert "pyproject.toml" in sources
    for src in sources:
        assert (REPO / src).exists(), f"{dockerfile.relative_to(REPO)} copies missing {src}"
    ignored = (REPO / ".dockerignore").read_text().split()
    for src in sources:
        assert src.rstrip("/").split("/")[0] not in ignored, f"{src} is excluded by .dockerignore"
    (base,) = [rest for op, rest in ins if op == "ARG" and rest.startswith("BASE_IMAGE=")]
    default = base.partition("=")[2]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", default)
    assert [rest.split()[0] for op, rest in ins if op == "FROM"] == ["${BASE_IMAGE}"] * 2


@pytest.mark.parametrize(
    ("dockerfile", "script", "ports"),
    [
        (OPERATOR, "kubevox-operator", {8080, 9090}),
        (
            RUNTIME,
            "kubevox-agent",
            {contract.HEALTH_PORT, contract.METRICS_PORT, contract.WEB_PORT},
        ),
    ],
    ids=["operator", "agent_runtime"],
)
def test_entrypoint_is_a_console_script_that_runs(
    dockerfile: Path, script: str, ports: set[int]
) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert _json(dockerfile, "ENTRYPOINT") == [script]
    assert script in scripts
    proc = run([VENV_BIN / script, "--help"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert script in proc.stdout
    (expose,) = [rest for op, rest in _final_stage(dockerfile) if op == "EXPOSE"]
    assert {int(p) for p in expose.split()} == ports


def test_runtime_default_command_is_the_workers() -> None:
    assert [contract.RUNTIME_COMMAND, *_json(RUNTIME, "CMD")] == [
        contract.RUNTIME_COMMAND,
        *contract.WORKER_ARGS,
    ]
    proc = run([VENV_BIN / "kubevox-agent", contract.WORKER_ARGS[0], "--help"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--config" in proc.stdout


@pytest.mark.parametrize("dockerfile", [OPERATOR, RUNTIME], ids=lambda p: p.parent.name)
def test_image_user_is_the_pods_non_root_user(dockerfile: Path, rendered: dict[str, str]) -> None:
    (user,) = [rest for op, rest in _final_stage(dockerfile) if op == "USER"]
    uid, _, gid = user.partition(":")
    operator = by_key(rendered["kustomize-base"])[
        ("Deployment", "kubevox-system", "kubevox-operator")
    ]
    pod = operator["spec"]["template"]["spec"]["securityContext"]
    worker = restricted_pod_security()  # what the operator gives worker and ingestion pods
    assert int(uid) == pod["runAsUser"] == worker["runAsUser"] != 0
    assert int(gid) == pod["runAsGroup"] == worker["runAsGroup"]


def test_runtime_writable_dir_exists_for_its_user() -> None:
    run_steps = " ".join(rest for op, rest in _final_stage(RUNTIME) if op == "RUN")
    assert f"mkdir -p {contract.RUN_DIR}" in run_steps
    assert f"chown 10001:10001 {contract.RUN_DIR}" in run_steps


@pytest.mark.parametrize(
    ("dockerfile", "lock"),
    [(OPERATOR, "operator.txt"), (RUNTIME, "runtime.txt")],
    ids=lambda p: getattr(p, "parent", Path()).name or p,
)
def test_images_install_the_lock(dockerfile: Path, lock: str) -> None:
    """Each image installs its export of uv.lock with hashes, then kubevox without dependencies:
    the versions it ships are the ones the tests run (tests/deploy/test_lock.py)."""
    steps = " ".join(rest for op, rest in _instructions(dockerfile) if op == "RUN")
    for requirements in ("build.txt", lock):
        pip = "/opt/kubevox/bin/pip install --no-deps --require-hashes"
        assert f"{pip} -r requirements/{requirements}" in steps
    assert "/opt/kubevox/bin/pip install --no-deps --no-build-isolation ." in steps
    assert re.findall(r"pip install(?: --[a-z-]+)* ([^-\s]\S*)", steps) == ["."]


def test_operator_image_install_is_slim_and_works(tmp_path: Path) -> None:
    """What operator/Dockerfile does: the lock's operator set, then kubevox without
    dependencies, into a fresh venv; the operator starts (--help) and the voice stack is absent
    (livekit.api, for SIP, is there). Needs PyPI (or a pip cache)."""
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    py = target / "bin" / "python"
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    for requirements in ("build.txt", "operator.txt"):
        proc = run(
            [*pip, "--require-hashes", "-r", REPO / "requirements" / requirements], timeout=900
        )
        if proc.returncode != 0 and "Could not find a version" in proc.stderr:
            pytest.skip(f"PyPI unreachable: {proc.stderr[-500:]}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run([*pip, "--no-build-isolation", REPO], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    help_ = run([target / "bin" / "kubevox-operator", "--help"], timeout=120)
    assert help_.returncode == 0, help_.stderr
    assert "--peering" in help_.stdout
    probe = run(
        [
            py,
            "-c",
            "import importlib.util as u; "
            # livekit.api (SIP trunks) is the operator's; the voice stack must not come along.
            "print([m for m in ('livekit.agents', 'livekit.rtc', 'numpy', 'redis', "
            "'faster_whisper', 'onnxruntime') if u.find_spec(m)])",
        ]
    )
    assert probe.stdout.strip() == "[]", probe.stdout
