"""The Terraform module: formatted, valid, and applied for real to a local control plane of its
own — namespace, Helm release of the chart, credential Secrets from sensitive variables — then
re-planned (no change) and destroyed. Terraform (v1.5.7, MPL) and the hashicorp/helm and
hashicorp/kubernetes providers are built from their Go modules (hack/tools); the providers are
wired in with dev_overrides, so nothing is fetched from registry.terraform.io."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.tools import REPO, run, terraform, tool_dir

MODULE = REPO / "terraform"
EXAMPLE = MODULE / "examples" / "existing-cluster"

SECRET_VALUES = {"deepgram": "dg-test-7f3a9c", "openai": "sk-test-19be44"}
LIVEKIT = {"url": "wss://livekit.test.invalid", "key": "APItest123", "secret": "lk-secret-5d2e"}


def _env(data_dir: Path) -> dict[str, str]:
    providers = tool_dir("build-terraform-providers.sh")
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(providers / "terraform.rc"),
        "TF_DATA_DIR": str(data_dir),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }


def _tf(cwd: Path, env: dict[str, str], *args: str, timeout: float = 600) -> Any:
    return run([terraform(), *args, "-no-color"], cwd=cwd, env=env, timeout=timeout)


def test_terraform_is_formatted() -> None:
    proc = run([terraform(), "fmt", "-check", "-recursive", "-diff", MODULE], cwd=MODULE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("directory", [MODULE, EXAMPLE], ids=["module", "example"])
def test_terraform_validate(directory: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    got = _tf(directory, env, "get")  # installs the local module; providers are overridden
    assert got.returncode == 0, got.stderr
    proc = _tf(directory, env, "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "The configuration is valid" in proc.stdout


@pytest.fixture(scope="module")
def own_control_plane() -> Iterator[Any]:
    """A control plane for Terraform alone: the release owns cluster-scoped objects (CRDs,
    ClusterRoles) that the other deploy tests also apply."""
    from kubevox_devenv.controlplane import temporary_control_plane

    with temporary_control_plane("kubevox-tf-cp-") as plane:
        yield plane


ROOT = """
terraform {{
  required_providers {{
    helm       = {{ source = "hashicorp/helm" }}
    kubernetes = {{ source = "hashicorp/kubernetes" }}
  }}
}}
provider "kubernetes" {{ config_path = "{kubeconfig}" }}
provider "helm" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
}}
variable "provider_api_keys" {{
  type      = map(string)
  sensitive = true
}}
variable "livekit_api_key" {{
  type      = string
  sensitive = true
}}
variable "livekit_api_secret" {{
  type      = string
  sensitive = true
}}
module "kubevox" {{
  source             = "{module}"
  chart              = "{chart}" # an absolute module source is copied alone, without the chart
  namespace          = "kubevox-tf"
  agent_namespaces   = ["voice-a", "voice-b"]
  provider_api_keys  = var.provider_api_keys
  livekit_url        = "{livekit_url}"
  livekit_api_key    = var.livekit_api_key
  livekit_api_secret = var.livekit_api_secret
  operator_replicas  = 2
  wait               = false # no kubelet here: pods never run
}}
output "kubevox" {{
  value = {{
    namespace = module.kubevox.namespace
    status    = module.kubevox.release_status
    secret    = module.kubevox.provider_secret_name
    keys      = module.kubevox.provider_secret_keys
    livekit   = module.kubevox.livekit
  }}
}}
"""


@pytest.mark.cluster
def test_terraform_installs_kubevox_and_destroys_it(own_control_plane: Any, tmp_path: Path) -> None:
    plane = own_control_plane
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        ROOT.format(
            kubeconfig=plane.kubeconfig,
            module=MODULE,
            chart=REPO / "manifests" / "helm" / "kubevox",
            livekit_url=LIVEKIT["url"],
        )
    )
    env = _env(tmp_path / "data")
    env.update(
        {
            "TF_VAR_provider_api_keys": json.dumps(SECRET_VALUES),
            "TF_VAR_livekit_api_key": LIVEKIT["key"],
            "TF_VAR_livekit_api_secret": LIVEKIT["secret"],
        }
    )
    assert _tf(root, env, "get").returncode == 0

    plan = _tf(root, env, "plan", "-out", "tfplan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for value in [*SECRET_VALUES.values(), LIVEKIT["key"], LIVEKIT["secret"]]:
        assert value not in plan.stdout, "a sensitive value appears in the plan"

    applied = _tf(root, env, "apply", "-auto-approve", "tfplan", timeout=900)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    out = json.loads(_tf(root, env, "output", "-json").stdout)["kubevox"]["value"]
    assert out["status"] == "deployed"
    assert out["keys"] == sorted(SECRET_VALUES)
    assert out["livekit"] == {
        "url": LIVEKIT["url"],
        "credentialsSecretRef": {"name": "livekit-credentials"},
    }

    def get(*args: str) -> Any:
        got = plane.kubectl_run("get", *args, "-o", "json")
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)

    ns = get("namespace", "kubevox-tf")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    dep = get("deployment", "kubevox-operator", "-n", "kubevox-tf")
    assert dep["spec"]["replicas"] == 2
    assert get("crd", "voiceagents.kubevox.dev")["spec"]["group"] == "kubevox.dev"
    get("clusterkopfpeering", "kubevox")
    for agent_ns in ("voice-a", "voice-b"):
        secret = get("secret", "voice-providers", "-n", agent_ns)
        assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == SECRET_VALUES
        lk = get("secret", "livekit-credentials", "-n", agent_ns)
        assert base64.b64decode(lk["data"]["apiSecret"]).decode() == LIVEKIT["secret"]

    again = _tf(root, env, "plan", "-detailed-exitcode")
    assert again.returncode == 0, "a second plan wants changes:\n" + again.stdout

    destroyed = _tf(root, env, "destroy", "-auto-approve", timeout=900)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    gone = plane.kubectl_run("get", "deployment", "kubevox-operator", "-n", "kubevox-tf")
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
