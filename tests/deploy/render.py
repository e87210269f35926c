"""Rendering every installer's output: kustomize overlays (kubectl's embedded kustomize) and
the Helm chart (`helm template`) with its default and production values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import CHART, MANIFESTS, helm, run

KUBE_VERSION = "v1.34.4"
"""The local control plane's version: charts render for the cluster they are checked against."""

KUSTOMIZATIONS = {
    "kustomize-base": MANIFESTS / "base",
    "kustomize-dev": MANIFESTS / "overlays" / "dev",
    "kustomize-production": MANIFESTS / "overlays" / "production",
}
HELM_VALUES: dict[str, list[Path]] = {
    "helm-default": [],
    "helm-production": [CHART / "values-production.yaml"],
}


def kustomize(kubectl: Path, directory: Path) -> str:
    proc = run([kubectl, "kustomize", directory])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def helm_template(values: list[Path], *extra: str, namespace: str = "kubevox-system") -> str:
    argv: list[str | Path] = [
        helm(),
        "template",
        "kubevox",
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
        "--kube-version",
        KUBE_VERSION,
    ]
    for v in values:
        argv += ["--values", v]
    proc = run([*argv, *extra])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_key(text: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Objects keyed by (kind, namespace, name)."""
    out = {}
    for d in documents(text):
        key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        assert key not in out, f"duplicate object {key}"
        out[key] = d
    return out
