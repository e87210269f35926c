"""The kustomize base and overlays and the Helm chart: single sources kept in step, the chart
equivalent to the base, flags the operator accepts, and every rendered object accepted by the
real API server (server-side dry-run, CRDs installed, restricted Pod Security checked)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevox_api.pricing import UnitPrices
from kubevox_operator.__main__ import parse_args
from kubevox_operator.unit_prices import DEFAULT_PATH

from tests.support.tools import CHART, MANIFESTS, REPO, helm, run

from .render import HELM_VALUES, KUSTOMIZATIONS, by_key, documents, helm_template

CRDS = REPO / "crds"
BASE = MANIFESTS / "base"
PRICES_CM = "kubevox-unit-prices"

COPIES = [
    *[(f, BASE / "crds" / f.name) for f in sorted(CRDS.glob("*.yaml"))],
    *[(f, CHART / "crds" / f.name) for f in sorted(CRDS.glob("*.yaml"))],
    (
        BASE / "crds" / "kopf-peering-namespaced.yaml",
        CHART / "crds" / "kopf-peering-namespaced.yaml",
    ),
    (BASE / "rbac.yaml", CHART / "files" / "rbac.yaml"),
    (BASE / "aggregated-roles.yaml", CHART / "files" / "aggregated-roles.yaml"),
    (
        MANIFESTS / "monitoring" / "grafana-dashboard.json",
        CHART / "files" / "grafana-dashboard.json",
    ),
]


@pytest.mark.parametrize(("source", "copy"), COPIES, ids=lambda p: str(p.relative_to(REPO)))
def test_copies_match_their_source(source: Path, copy: Path) -> None:
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(REPO)} differs from {source.relative_to(REPO)}: "
        "run hack/tools/sync-manifests.sh"
    )


def test_chart_carries_the_peering_crd_of_the_base() -> None:
    base = [
        d
        for d in documents((BASE / "peering.yaml").read_text())
        if d["kind"] == "CustomResourceDefinition"
    ]
    chart = documents((CHART / "crds" / "clusterkopfpeerings.kopf.dev.yaml").read_text())
    assert base
    assert chart == base, "run hack/tools/sync-manifests.sh"


def test_every_crd_is_installed_by_every_installer(rendered: dict[str, str]) -> None:
    want = {yaml.safe_load(f.read_text())["metadata"]["name"] for f in CRDS.glob("*.yaml")}
    want |= {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for name, text in rendered.items():
        got = {
            d["metadata"]["name"]
            for d in documents(text)
            if d["kind"] == "CustomResourceDefinition"
        }
        assert got == want, name
        for d in documents(text):
            if d["kind"] == "CustomResourceDefinition" and d["spec"]["group"] == "kubevox.dev":
                committed = yaml.safe_load((CRDS / f"{d['metadata']['name']}.yaml").read_text())
                assert d["spec"] == committed["spec"], name


def _operator(text: str) -> dict[str, Any]:
    return by_key(text)[("Deployment", "kubevox-system", "kubevox-operator")]


@pytest.mark.parametrize("name", [*KUSTOMIZATIONS, *HELM_VALUES])
def test_operator_accepts_the_deployment_flags(
    rendered: dict[str, str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's args parse with the operator's own argument parser, and they and the env
    say what the pod's ports and the metrics Service expect."""
    container = _operator(rendered[name])["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    monkeypatch.setenv("KUBEVOX_RUNTIME_IMAGE", env["KUBEVOX_RUNTIME_IMAGE"]["value"])
    args = parse_args(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.metrics_port == ports["metrics"]
    assert args.liveness == f"http://0.0.0.0:{ports['health']}/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert not args.standalone
    assert args.peering == "kubevox"
    assert args.image.startswith("ghcr.io/kubevox/agent-runtime:")
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # kopf identity
    services = [d for d in documents(rendered[name]) if d["kind"] == "Service"]
    assert [p["targetPort"] for s in services for p in s["spec"]["ports"]] == ["metrics"]


@pytest.mark.parametrize("name", [*KUSTOMIZATIONS, *HELM_VALUES])
def test_operator_reads_the_unit_prices_every_installer_ships(
    rendered: dict[str, str], name: str
) -> None:
    """ConfigMap kubevox-unit-prices holds a price list that parses, mounted (optional: a
    cluster may delete it) where the operator reads it by default."""
    objects = by_key(rendered[name])
    (prices,) = [v for k, v in objects.items() if k[:1] + k[2:] == ("ConfigMap", PRICES_CM)]
    UnitPrices.parse_yaml(prices["data"]["prices.yaml"])
    pod = _operator(rendered[name])["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == PRICES_CM)
    assert volume["configMap"]["optional"] is True
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    key = Path(DEFAULT_PATH).relative_to(mount["mountPath"])
    assert str(key) in prices["data"]


def _comparable(deployment: dict[str, Any]) -> dict[str, Any]:
    pod = deployment["spec"]["template"]["spec"]
    return {
        "strategy": deployment["spec"]["strategy"],
        "selector": deployment["spec"]["selector"],
        "replicas": deployment["spec"]["replicas"],
        "pod": {k: v for k, v in pod.items() if k != "containers"},
        "container": pod["containers"][0],
    }


def _rules(text: str) -> dict[str, Any]:
    return {
        k[2]: d.get("rules") for k, d in by_key(text).items() if k[0] in ("ClusterRole", "Role")
    }


def test_helm_default_equals_the_kustomize_base(rendered: dict[str, str]) -> None:
    """Same objects (but the Namespace Helm installs into), same RBAC rules, same operator pod."""
    base, chart = by_key(rendered["kustomize-base"]), by_key(rendered["helm-default"])
    assert set(base) - {("Namespace", "", "kubevox-system")} == set(chart)
    assert _rules(rendered["kustomize-base"]) == _rules(rendered["helm-default"])
    for key in base:
        if key[0] in ("ClusterRoleBinding", "RoleBinding"):
            assert base[key]["subjects"] == chart[key]["subjects"]
            assert base[key]["roleRef"] == chart[key]["roleRef"]
    assert _comparable(base[("Deployment", "kubevox-system", "kubevox-operator")]) == _comparable(
        chart[("Deployment", "kubevox-system", "kubevox-operator")]
    )


def test_helm_production_equals_the_kustomize_production_overlay(rendered: dict[str, str]) -> None:
    prod, chart = by_key(rendered["kustomize-production"]), by_key(rendered["helm-production"])
    helm_only = {("ConfigMap", "monitoring", "kubevox-adapter-rules")}  # kustomize: values file
    assert set(prod) - {("Namespace", "", "kubevox-system")} == set(chart) - helm_only
    dep = ("Deployment", "kubevox-system", "kubevox-operator")
    assert _comparable(prod[dep]) == _comparable(chart[dep])
    dash = ("ConfigMap", "kubevox-system", "kubevox-dashboard")
    assert prod[dash]["data"] == chart[dash]["data"]
    for key in (
        ("NetworkPolicy", "kubevox-system", "kubevox-operator"),
        ("PodDisruptionBudget", "kubevox-system", "kubevox-operator"),
        ("ServiceMonitor", "kubevox-system", "kubevox-operator"),
    ):
        assert prod[key]["spec"] == chart[key]["spec"], key


def test_helm_chart_lints_strictly() -> None:
    proc = run([helm(), "lint", "--strict", CHART, "--kube-version", "v1.34.4"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_adapter_rules_match_the_adapter_values_file(rendered: dict[str, str]) -> None:
    """The chart's adapter ConfigMap and manifests/monitoring/prometheus-adapter-values.yaml
    carry the same rule, and it serves the metric the operator's HPAs read."""
    from kubevox_api.contract import ACTIVE_CALLS_METRIC

    cm = by_key(rendered["helm-production"])[("ConfigMap", "monitoring", "kubevox-adapter-rules")]
    config = yaml.safe_load(cm["data"]["config.yaml"])
    values = yaml.safe_load(
        (MANIFESTS / "monitoring" / "prometheus-adapter-values.yaml").read_text()
    )
    assert config["rules"] == values["rules"]["custom"]
    (rule,) = config["rules"]
    assert rule["name"]["as"] == ACTIVE_CALLS_METRIC
    assert rule["seriesQuery"].startswith(ACTIVE_CALLS_METRIC + "{")


def test_helm_prometheus_url_reaches_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """autoscaling.prometheusUrl becomes the env var the operator reads it from (unset, there is
    none: the default chart's pod equals the base's, above)."""
    url = "http://prometheus-operated.monitoring.svc:9090"
    text = helm_template([], "--set", f"autoscaling.prometheusUrl={url}")
    container = _operator(text)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    monkeypatch.delenv("KUBEVOX_PROMETHEUS_URL", raising=False)
    assert parse_args(container["args"]).prometheus_url == ""
    for name, value in env.items():
        monkeypatch.setenv(name, value or "")
    assert parse_args(container["args"]).prometheus_url == url


def test_helm_ingestion_allowed_cidrs_reach_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """ingestion.allowedCIDRs becomes the operator's allow list for URL sources (unset: none,
    every internal address is refused)."""
    monkeypatch.delenv("KUBEVOX_INGEST_ALLOWED_CIDRS", raising=False)
    default = _operator(helm_template([]))["spec"]["template"]["spec"]["containers"][0]
    assert "KUBEVOX_INGEST_ALLOWED_CIDRS" not in {e["name"] for e in default["env"]}
    assert parse_args(default["args"]).ingest_allowed_cidrs == ""
    text = helm_template([], "--set", "ingestion.allowedCIDRs={10.20.0.0/16,192.168.7.1/32}")
    container = _operator(text)["spec"]["template"]["spec"]["containers"][0]
    for e in container["env"]:
        monkeypatch.setenv(e["name"], e.get("value") or "")
    assert parse_args(container["args"]).ingest_allowed_cidrs == "10.20.0.0/16,192.168.7.1/32"


def test_helm_livekit_allowed_cidrs_reach_the_operator() -> None:
    """livekit.allowedCIDRs becomes --livekit-allowed-cidrs (unset: no flag, nothing internal)."""
    text = helm_template([], "--set", "livekit.allowedCIDRs={10.96.0.0/12,10.244.0.0/16}")
    args = _operator(text)["spec"]["template"]["spec"]["containers"][0]["args"]
    allowed = parse_args(args).livekit_allowed_cidrs
    assert [str(n) for n in allowed] == ["10.96.0.0/12", "10.244.0.0/16"]


def test_helm_watch_namespaces_mode() -> None:
    """Watching some namespaces: one --namespace flag, KopfPeering and peering Role each."""
    objs = by_key(helm_template([], "--set", "watchNamespaces={voice,support}"))
    args = objs[("Deployment", "kubevox-system", "kubevox-operator")]["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert parse_args(args).namespace == ["voice", "support"]
    for ns in ("voice", "support"):
        assert ("KopfPeering", ns, "kubevox") in objs
        assert ("RoleBinding", ns, "kubevox-operator-peering") in objs
    assert not any(k[0] == "ClusterKopfPeering" for k in objs)


# --- the real API server ---------------------------------------------------------------------


def _dry_run(kubectl: Callable[..., Any], text: str) -> str:
    """Server-side dry-run of every object; returns kubectl's warnings."""
    out = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=kubevox-deploy-test",
        "--force-conflicts",
        "-f",
        "-",
        input=text,
    )
    assert out.returncode == 0, out.stderr
    return str(out.stderr)


@pytest.mark.cluster
@pytest.mark.parametrize("name", [*KUSTOMIZATIONS, *HELM_VALUES])
def test_rendered_manifests_pass_server_side_dry_run(
    kubectl: Callable[..., Any], rendered: dict[str, str], name: str
) -> None:
    """Everything is accepted, and the operator pod passes the restricted Pod Security
    Standard (the namespace warns on violations; no warning came back)."""
    warnings = _dry_run(kubectl, rendered[name])
    assert "PodSecurity" not in warnings, warnings
    count = len(documents(rendered[name]))
    assert count >= 9, f"{name}: only {count} objects rendered"


@pytest.mark.cluster
def test_pod_security_check_would_catch_a_violation(
    kubectl: Callable[..., Any], rendered: dict[str, str]
) -> None:
    """Negative control for the test above: the same Deployment keeping its capabilities is
    warned about."""
    dep = _operator(rendered["kustomize-base"])
    del dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
    # The base's Namespace carries the warn label; apply it (dry-run) in the same request.
    ns = by_key(rendered["kustomize-base"])[("Namespace", "", "kubevox-system")]
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=kubevox-deploy-test",
        "-f",
        "-",
        input=json.dumps(ns),
    )
    warnings = _dry_run(kubectl, json.dumps(dep))
    assert "would violate PodSecurity" in warnings, warnings
    assert "capabilities" in warnings, warnings


EXAMPLES = [
    MANIFESTS / "argocd" / "application-kustomize.yaml",
    MANIFESTS / "argocd" / "application-helm.yaml",
    *sorted((REPO / "manifests" / "samples").glob("*.yaml")),
]


@pytest.mark.cluster
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_server_side_dry_run(kubectl: Callable[..., Any], path: Path) -> None:
    text = path.read_text()
    ns = [] if "namespace:" in text else ["-n", "clinic"]
    out = kubectl("apply", "--server-side", "--dry-run=server", *ns, "-f", str(path))
    assert out.returncode == 0, out.stderr


@pytest.mark.cluster
def test_argocd_cm_patch_applies_to_argocd_cm(kubectl: Callable[..., Any]) -> None:
    patch = yaml.safe_load((MANIFESTS / "argocd" / "argocd-cm-patch.yaml").read_text())
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        **patch,
    }
    out = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(cm))
    assert out.returncode == 0, out.stderr
