"""The CRDs against the real kube-apiserver: installed and Established, samples apply, every bad
case is refused at admission with a message naming the field, defaults come back filled in, and
the published OpenAPI carries the field descriptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubevox_api.knowledgebase import LOCAL_EMBEDDING_MODELS
from kubevox_devenv.controlplane import ControlPlane

from tests.support.cases import BAD_CASES, KNOWLEDGE_BASE, VOICE_AGENT, BadCase
from tests.support.cases_analysis import ANALYSIS_CASES

pytestmark = pytest.mark.cluster

SAMPLES = Path(__file__).parents[2] / "manifests" / "samples"
NAMESPACE = "admission"
PLURALS = {"VoiceAgent": "voiceagents", "KnowledgeBase": "knowledgebases"}


@pytest.fixture(scope="module")
def api(crds_installed: ControlPlane) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(crds_installed.kubeconfig))
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    yield api_client
    core.delete_namespace(NAMESPACE)
    api_client.close()


def _create(api: client.ApiClient, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Create with strict field validation, as `kubectl apply` does by default."""
    return client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[no-any-return]
        "kubevox.dev",
        "v1alpha1",
        NAMESPACE,
        PLURALS[obj["kind"]],
        obj,
        field_validation="Strict",
        dry_run="All" if dry_run else None,
    )


def test_crds_are_established(crds_installed: ControlPlane) -> None:
    out = crds_installed.kubectl_run("get", "crd", "-o", "json")
    crds = {c["metadata"]["name"]: c for c in json.loads(out.stdout)["items"]}
    for name in ("voiceagents.kubevox.dev", "knowledgebases.kubevox.dev"):
        conditions = {c["type"]: c["status"] for c in crds[name]["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"


def test_every_sample_applies(crds_installed: ControlPlane, api: client.ApiClient) -> None:
    for path in sorted(SAMPLES.glob("*.yaml")):
        out = crds_installed.kubectl_run("apply", "-n", NAMESPACE, "-f", str(path))
        assert out.returncode == 0, f"{path.name}: {out.stderr}"
    listing = crds_installed.kubectl_run("get", "voiceagents,knowledgebases", "-n", NAMESPACE)
    assert "support" in listing.stdout
    assert "clinic-facts" in listing.stdout
    # The printer columns are the ones the CRD declares.
    header = listing.stdout.splitlines()[0]
    for column in ("READY", "REPLICAS", "ACTIVE CALLS", "AGE"):
        assert column in header


@pytest.mark.parametrize("case", [*BAD_CASES, *ANALYSIS_CASES], ids=lambda c: c.id)
def test_bad_input_is_refused_at_admission(api: client.ApiClient, case: BadCase) -> None:
    with pytest.raises(ApiException) as err:
        _create(api, case.manifest(f"bad-{case.id}"), dry_run=True)
    assert err.value.status in (400, 422), err.value.body
    message = json.loads(err.value.body)["message"]
    assert case.field in message, message


@pytest.mark.parametrize("model", LOCAL_EMBEDDING_MODELS)
def test_local_embedding_models_are_admitted(api: client.ApiClient, model: str) -> None:
    obj = {**KNOWLEDGE_BASE, "metadata": {"name": f"local-{model.lower()}"}}
    obj["spec"] = {**obj["spec"], "embedding": {"provider": "local", "model": model}}
    assert _create(api, obj, dry_run=True)["spec"]["embedding"]["model"] == model


def test_defaults_are_filled_in(api: client.ApiClient) -> None:
    agent = _create(api, {**VOICE_AGENT, "metadata": {"name": "defaults"}})
    spec = agent["spec"]
    assert spec["language"] == "en"
    assert spec["drainTimeoutSeconds"] == 3600
    assert spec["scaling"] == {
        "autoscaler": "hpa",
        "minReplicas": 1,
        "maxReplicas": 10,
        "targetCallsPerPod": 4,
        "maxCallsPerPod": 6,
        "scaleDownStabilizationSeconds": 600,
        "executor": "process",
    }
    assert spec["turnDetection"]["mode"] == "model"
    assert spec["livekit"]["credentialsSecretRef"]["apiKeyKey"] == "apiKey"
    # Left to the operator, which sizes them for maxCallsPerPod (kubevox_api/sizing.py).
    assert spec["resources"] == {"requests": {}, "limits": {}}
    assert spec["llm"]["timeoutSeconds"] == 10

    kb = _create(api, {**KNOWLEDGE_BASE, "metadata": {"name": "defaults"}})
    assert kb["spec"]["chunking"] == {"sizeTokens": 256, "overlapTokens": 32}
    assert kb["spec"]["embedding"]["provider"] == "local"
    assert kb["spec"]["sources"][0]["format"] == "auto"
    assert kb["spec"]["language"] == "en"
    assert "language" not in kb["spec"]["sources"][0]


def test_partial_nested_object_gets_the_rest_defaulted(api: client.ApiClient) -> None:
    obj = {**VOICE_AGENT, "metadata": {"name": "partial"}}
    obj["spec"] = {**obj["spec"], "scaling": {"maxReplicas": 3}}
    spec = _create(api, obj)["spec"]
    assert spec["scaling"]["maxReplicas"] == 3
    assert spec["scaling"]["minReplicas"] == 1
    assert spec["scaling"]["autoscaler"] == "hpa"


def test_openapi_publishes_descriptions(crds_installed: ControlPlane) -> None:
    out = crds_installed.kubectl_run("get", "--raw", "/openapi/v3/apis/kubevox.dev/v1alpha1")
    assert out.returncode == 0, out.stderr
    raw = json.loads(out.stdout)
    schemas = raw["components"]["schemas"]
    agent = schemas["dev.kubevox.v1alpha1.VoiceAgent"]
    scaling = agent["properties"]["spec"]["properties"]["scaling"]
    assert (
        "active calls"
        in agent["properties"]["spec"]["properties"]["scaling"]["properties"]["targetCallsPerPod"][
            "description"
        ]
    )
    assert scaling["properties"]["maxCallsPerPod"]["description"].startswith("Hard capacity")
    kb = schemas["dev.kubevox.v1alpha1.KnowledgeBase"]
    assert (
        "exactly one of"
        in kb["properties"]["spec"]["properties"]["sources"]["items"]["description"]
    )


def test_kubectl_explain_prints_descriptions(crds_installed: ControlPlane) -> None:
    out = crds_installed.kubectl_run("explain", "voiceagent.spec.scaling")
    assert out.returncode == 0, out.stderr
    assert "Hard capacity of one pod" in out.stdout
    out = crds_installed.kubectl_run("explain", "voiceagent.spec.scaling.autoscaler")
    assert out.returncode == 0, out.stderr
    assert "KEDA ScaledObject" in out.stdout
    assert "ENUM:\n    hpa\n    keda\n" in out.stdout
    out = crds_installed.kubectl_run("explain", "kb.spec.sources")
    assert "exactly one of inline, configMap, secret or url" in out.stdout


def test_short_names_and_category(crds_installed: ControlPlane) -> None:
    out = crds_installed.kubectl_run("get", "kubevox", "-n", NAMESPACE, "-o", "name")
    assert out.returncode == 0, out.stderr
    names = set(out.stdout.split())
    assert "voiceagent.kubevox.dev/support" in names
    assert "knowledgebase.kubevox.dev/clinic-facts" in names
    assert crds_installed.kubectl_run("get", "va,kb", "-n", NAMESPACE).returncode == 0
