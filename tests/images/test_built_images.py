"""The built images, inspected: what each one carries, its user, and the runtime on a read-only
root filesystem with only the writable mounts the operator's pod spec gives. The images come from
kubevox_devenv.images, the code behind `make images` (cached: an unchanged tree builds nothing);
they run with runc (tests/images/runc.py), with no network."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api import KnowledgeBase, VoiceAgent, contract
from kubevox_devenv.images import (
    Image,
    ImagesUnavailable,
    build_images,
    ensure_in_storage,
)
from kubevox_operator.builders import OperatorDefaults, build_agent_children
from kubevox_operator.builders.common import restricted_pod_security

from .runc import Run, image_config, run_image

pytestmark = [pytest.mark.images, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
VOICE_STACK = ("livekit.agents", "livekit.rtc", "numpy", "onnxruntime", "faster_whisper", "piper")
DEV_TOOLS = ("pytest", "ruff", "mypy", "uv")


@pytest.fixture(scope="module")
def images() -> dict[str, Image]:
    try:
        built = build_images()
    except ImagesUnavailable as e:
        pytest.skip(f"this machine cannot build images: {e}")
    for image in built.values():
        ensure_in_storage(image)
    return built


def run(image: Image, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_image(image, Run(list(argv)), timeout=timeout)


def present(image: Image, names: tuple[str, ...]) -> list[str]:
    """Which of the modules (importable) or commands (on PATH) the image has."""
    code = (
        "import importlib.util, shutil, sys\n"
        "def found(m):\n"
        "    try:\n"
        "        return importlib.util.find_spec(m) is not None or shutil.which(m) is not None\n"
        "    except ModuleNotFoundError:\n"
        "        return False\n"
        "print(' '.join(m for m in sys.argv[1:] if found(m)))\n"
    )
    proc = run(image, "python3", "-c", code, *names)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_operator_image_has_the_operator_alone(images: dict[str, Image]) -> None:
    operator = images["operator"]
    proc = run(operator, "kubevox-operator", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--peering" in proc.stdout
    assert present(operator, ("kopf", *VOICE_STACK, *DEV_TOOLS)) == ["kopf"]


def test_runtime_image_has_no_operator_and_no_dev_tools(images: dict[str, Image]) -> None:
    runtime = images["agent-runtime"]
    proc = run(runtime, "kubevox-agent", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "kubevox-agent" in proc.stdout
    found = present(runtime, ("kopf", *VOICE_STACK, *DEV_TOOLS))
    assert [m for m in found if m in DEV_TOOLS] == []
    assert [m for m in VOICE_STACK if m not in found] == []
    assert "kopf" not in found, "the runtime image carries the operator's kopf"


@pytest.mark.parametrize("name", ["operator", "agent-runtime"])
def test_images_run_as_the_pods_non_root_user(images: dict[str, Image], name: str) -> None:
    assert image_config(images[name])["User"] == "10001:10001"


def offline_worker(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """The sample offline agent's worker container, as the operator builds it, and its config
    (the ConfigMap's data) written to a directory."""
    docs = list(yaml.safe_load_all((REPO / "manifests/samples/offline-agent.yaml").read_text()))
    agent_body = next(d for d in docs if d["kind"] == "VoiceAgent")
    agent_body["metadata"].update(namespace="clinic", uid="u-1")
    kbs = {
        d["metadata"]["name"]: KnowledgeBase.model_validate(d)
        for d in docs
        if d["kind"] == "KnowledgeBase"
    }
    children = build_agent_children(
        VoiceAgent.model_validate(agent_body), agent_body, kbs, OperatorDefaults()
    ).objects
    config_map = next(o for o in children if o["kind"] == "ConfigMap")
    deployment = next(o for o in children if o["kind"] == "Deployment")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for name, text in config_map["data"].items():
        (config_dir / name).write_text(text)
    config_dir.chmod(0o755)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container, config_dir


def test_runtime_loads_its_models_on_a_read_only_root_filesystem(
    images: dict[str, Image], tmp_path: Path
) -> None:
    """Only /tmp and /var/run/kubevox are writable, as in the pod: caches, model files and
    temporary files must all stay there. The worker's prewarm runs, then each offline model
    produces one result through the runtime's own plugins (tests/images/probe.py)."""
    container, config_dir = offline_worker(tmp_path)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pod = restricted_pod_security()
    user = pod["runAsUser"], pod["runAsGroup"]
    probe = Run(["python3", "/probe.py"], user=user, read_only=True)
    for mount in container["volumeMounts"]:
        if mount["name"] == "config":
            assert mount.get("readOnly") is True
            probe.binds[str(config_dir)] = mount["mountPath"]
        else:  # the emptyDirs
            probe.tmpfs.append(mount["mountPath"])
    for env in container["env"]:
        # Secrets and the downward API need a cluster: placeholders (nothing connects anywhere).
        probe.env[env["name"]] = env.get("value", "unused")
    probe.binds[str(REPO / "tests/images/probe.py")] = "/probe.py"
    proc = run_image(images["agent-runtime"], probe, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["minilm"] == 384
    assert result["static"] > 0
    assert result["multilingual"] == 512
    # The multilingual model's attribution ships beside it (Apache-2.0).
    assert "universal-sentence-encoder-multilingual" in result["notices"]
    assert result["static_file"].startswith("/opt/kubevox/share/kubevox/models/")
    assert result["speech_seconds"] > 0.3
    assert "morning" in result["transcript"].lower()
    assert result["llm"].strip()
    assert contract.RUN_DIR in {m["mountPath"] for m in container["volumeMounts"]}
