"""checkov (PyPI, in its own venv: hack/tools/build-checkov.sh) over everything kubevox installs:
the rendered kustomize overlays and Helm chart, the examples, both Dockerfiles and the Terraform
module. Zero findings, except the accepted ones below, each with its one-line reason; every
check skipped in a manifest or Dockerfile carries its reason next to the skip."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import MANIFESTS, REPO, checkov, run

from .render import documents

# (check id, file name the finding is in): why it is accepted.
ACCEPTED = {
    (
        "CKV_SECRET_4",
        "knowledgebases.kubevox.dev.yaml",
    ): "the CRD's field description shows the redis://user:password@host URL form, no credential",
}

DOCKERFILES = [REPO / "operator" / "Dockerfile", REPO / "agent_runtime" / "Dockerfile"]
EXAMPLES = [
    MANIFESTS / "argocd" / "application-kustomize.yaml",
    MANIFESTS / "argocd" / "application-helm.yaml",
]


def _checkov(*args: str | Path) -> list[dict[str, Any]]:
    proc = run([checkov(), *args, "--output", "json", "--skip-download", "--compact"], timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: findings, reported below
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports, proc.stdout[:2000]
    assert all("results" in r for r in reports), proc.stdout[:2000]
    return reports


def _unaccepted(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['check_name']}: {c['file_path']} {c['resource']}"
        for r in reports
        for c in r["results"]["failed_checks"]
        if (c["check_id"], Path(c["file_path"]).name) not in ACCEPTED
    ]


@pytest.fixture(scope="module")
def rendered_dir(rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    for name, text in rendered.items():
        # One file per object: findings name the object's file, accepted ones by name.
        for i, doc in enumerate(documents(text)):
            fname = f"{name}-{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
            if doc["kind"] == "CustomResourceDefinition":
                fname = f"{doc['metadata']['name']}.yaml"
            (out / fname).write_text(yaml.safe_dump(doc, sort_keys=False))
    for example in EXAMPLES:
        (out / example.name).write_text(example.read_text())
    return out


@pytest.fixture(scope="module")
def k8s_reports(rendered_dir: Path) -> list[dict[str, Any]]:
    return _checkov("--directory", rendered_dir, "--framework", "kubernetes", "secrets")


def test_rendered_manifests_have_no_unexplained_findings(k8s_reports: list[dict[str, Any]]) -> None:
    kube = [r for r in k8s_reports if r["check_type"] == "kubernetes"]
    assert kube
    assert kube[0]["summary"]["passed"] > 100
    assert _unaccepted(k8s_reports) == []


def test_accepted_findings_still_occur(k8s_reports: list[dict[str, Any]]) -> None:
    """No stale exception: each accepted finding is still reported (and still needs its reason)."""
    found = {
        (c["check_id"], Path(c["file_path"]).name)
        for r in k8s_reports
        for c in r["results"]["failed_checks"]
    }
    assert set(ACCEPTED) <= found
    assert all(len(reason) > 20 for reason in ACCEPTED.values())


SKIP_ANNOTATION = re.compile(r"^(CKV2?_[A-Z0-9_]+)=(.{20,})$")


def test_every_skip_in_a_manifest_has_its_reason(
    k8s_reports: list[dict[str, Any]], rendered: dict[str, str]
) -> None:
    annotated: dict[str, set[str]] = {}
    for text in rendered.values():
        for doc in documents(text):
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    m = SKIP_ANNOTATION.match(value)
                    assert m, f"{doc['kind']}/{doc['metadata']['name']} {key}: needs ID=reason"
                    resource = (
                        f"{doc['kind']}.{doc['metadata'].get('namespace', 'default')}."
                        f"{doc['metadata']['name']}"
                    )
                    annotated.setdefault(resource, set()).add(m.group(1))
    skipped = [
        (c["check_id"], c["resource"]) for r in k8s_reports for c in r["results"]["skipped_checks"]
    ]
    assert skipped, "the skip annotations were not seen by checkov"
    for check_id, resource in skipped:
        assert check_id in annotated.get(resource, set()), (check_id, resource)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_has_no_unexplained_findings(dockerfile: Path) -> None:
    reports = _checkov("--file", dockerfile, "--framework", "dockerfile")
    assert reports[0]["summary"]["passed"] > 20
    assert _unaccepted(reports) == []
    skips = re.findall(r"#\s*checkov:skip=(CKV\w+):\s*(.*)", dockerfile.read_text())
    assert {c["check_id"] for c in reports[0]["results"]["skipped_checks"]} == {i for i, _ in skips}
    assert all(len(reason) > 20 for _, reason in skips)


def test_terraform_module_has_no_findings() -> None:
    reports = _checkov("--directory", REPO / "terraform", "--framework", "terraform")
    assert reports[0]["summary"]["resource_count"] >= 4
    assert _unaccepted(reports) == []
