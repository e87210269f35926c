"""KnowledgeBase → the ingestion ConfigMap (its manifest) and a Job per content version."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import yaml
from kubevox_api import KnowledgeBase, contract
from kubevox_api.runtime_config import stable_hash

from .common import (
    IGNORE_DISRUPTION,
    Obj,
    child_name,
    fail_job_on_exit,
    labels,
    metadata,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
)

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h)")
_UNIT = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """``6h``, ``1h30m``, ``90s`` → seconds (the CRD's pattern has validated the form)."""
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))


def content_hash(
    kb: KnowledgeBase,
    config_maps: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
) -> str:
    """Hash of everything ingestion reads: the spec's sources and settings, plus the data of the
    referenced ConfigMaps and Secrets (hashed, never stored). URLs count by address only; their
    content is re-read on ``refreshInterval``. The index layout counts too
    (``contract.KNOWLEDGE_INDEX_FORMAT``): a new one re-indexes every KnowledgeBase once."""
    spec = kb.spec
    material: dict[str, Any] = {
        "indexFormat": contract.KNOWLEDGE_INDEX_FORMAT,
        "language": spec.language,
        "sources": [s.to_k8s() for s in spec.sources],
        "chunking": spec.chunking.to_k8s(),
        "embedding": spec.embedding.to_k8s(),
        "index": kb.index_name,
        "limits": spec.limits.to_k8s(),
        "configMaps": config_maps,
        "secrets": {
            name: {k: hashlib.sha256(v.encode()).hexdigest() for k, v in data.items()}
            for name, data in secrets.items()
        },
    }
    return stable_hash(material)


@dataclass
class IngestPlan:
    """What one ingestion run needs: its manifest ConfigMap and its Job."""

    config_map: Obj
    job: Obj
    run_id: str


def run_id(digest: str, refresh_epoch: int | None) -> str:
    """Identity of one ingestion run: the content, plus the refresh period when there is one."""
    return digest[:10] if refresh_epoch is None else f"{digest[:10]}-{refresh_epoch:x}"


def _name(kb: KnowledgeBase) -> str:
    return str(kb.metadata["name"])


def _labels(kb: KnowledgeBase) -> dict[str, str]:
    return labels("ingest", _name(kb), {contract.LABEL_KNOWLEDGE_BASE: _name(kb)})


def manifest_config_map_name(kb: KnowledgeBase) -> str:
    return child_name(_name(kb), "-ingest")


def job_name(kb: KnowledgeBase, run: str) -> str:
    return child_name(_name(kb), f"-ingest-{run}")


def build_ingest_plan(
    kb: KnowledgeBase, owner: Obj, digest: str, run: str, image: str, allowed_cidrs: str = ""
) -> IngestPlan:
    """``allowed_cidrs``: the operator's allow list of internal networks URL sources may reach
    (comma-separated; "" refuses them all)."""
    namespace = str(kb.metadata.get("namespace", "default"))
    manifest = {
        "apiVersion": kb.api_version,
        "kind": kb.kind,
        # The uid identifies the owner of the Redis index (another KnowledgeBase naming it
        # is refused by the ingest command).
        "metadata": {
            "name": _name(kb),
            "namespace": namespace,
            "uid": str(owner["metadata"].get("uid", "")),
        },
        "spec": kb.spec.to_k8s(),
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(manifest_config_map_name(kb), namespace, owner, _labels(kb)),
        "data": {contract.KB_MANIFEST_FILE: yaml.safe_dump(manifest, sort_keys=False)},
    }
    job = _job(kb, owner, namespace, digest, run, image, allowed_cidrs)
    return IngestPlan(config_map=cm, job=job, run_id=run)


def _source_volumes(kb: KnowledgeBase) -> tuple[list[Obj], list[Obj]]:
    volumes: list[Obj] = []
    mounts: list[Obj] = []
    seen: set[str] = set()
    for src in kb.spec.sources:
        if src.config_map is not None:
            kind, name, vol = (
                "configmap",
                src.config_map.name,
                {"configMap": {"name": src.config_map.name}},
            )
        elif src.secret is not None:
            kind, name, vol = "secret", src.secret.name, {"secret": {"secretName": src.secret.name}}
        else:
            continue
        vname = f"{kind[:2]}-{stable_hash(name, 10)}"
        if vname in seen:
            continue
        seen.add(vname)
        volumes.append({"name": vname, **vol})
        mounts.append(
            {"name": vname, "mountPath": f"{contract.SOURCES_DIR}/{kind}/{name}", "readOnly": True}
        )
    return volumes, mounts


def _job(
    kb: KnowledgeBase,
    owner: Obj,
    namespace: str,
    digest: str,
    run: str,
    image: str,
    allowed_cidrs: str,
) -> Obj:
    spec = kb.spec
    env = [
        secret_env(
            contract.REDIS_URL_ENV,
            spec.store.redis_url_secret_ref.name,
            spec.store.redis_url_secret_ref.key,
        ),
        {"name": "HOME", "value": contract.TMP_DIR},
        # Set even when empty, so an image's own default can never widen the operator's list.
        {"name": contract.INGEST_ALLOWED_CIDRS_ENV, "value": allowed_cidrs},
    ]
    if spec.embedding.credentials is not None:
        ref = spec.embedding.credentials.secret_key_ref
        env.append(secret_env(contract.EMBEDDING_API_KEY_ENV, ref.name, ref.key))
    src_volumes, src_mounts = _source_volumes(kb)
    name = job_name(kb, run)
    job_labels = {
        **_labels(kb),
        contract.LABEL_CONTENT_HASH: digest,
        contract.LABEL_INGEST_RUN: run,
    }
    container = {
        "name": contract.INGEST_CONTAINER,
        "image": image,
        "command": [contract.RUNTIME_COMMAND],
        "args": [
            "ingest",
            "-f",
            f"{contract.KB_MANIFEST_DIR}/{contract.KB_MANIFEST_FILE}",
            "--sources-dir",
            contract.SOURCES_DIR,
            "--termination-log",
            contract.TERMINATION_LOG,
        ],
        "env": env,
        "terminationMessagePath": contract.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "manifest", "mountPath": contract.KB_MANIFEST_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": contract.TMP_DIR},
            *src_mounts,
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(name, namespace, owner, job_labels),
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 3600,
            "podFailurePolicy": {
                "rules": [
                    # Exit 1 (a source or the store failed) and 2 (bad input) will not heal on a
                    # retry.
                    fail_job_on_exit(contract.INGEST_CONTAINER, 1, 2),
                    # An eviction or preemption is not the ingestion's fault: retry it.
                    IGNORE_DISRUPTION,
                    # Out of memory (SIGKILL): the same sources would exhaust memory again, so
                    # the Job fails at once and the status says IngestionOutOfMemory.
                    fail_job_on_exit(contract.INGEST_CONTAINER, contract.INGEST_OOM_EXIT_CODE),
                ]
            },
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": restricted_pod_security(),
                    "containers": [container],
                    "volumes": [
                        {"name": "manifest", "configMap": {"name": manifest_config_map_name(kb)}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
                        *src_volumes,
                    ],
                },
            },
        },
    }
