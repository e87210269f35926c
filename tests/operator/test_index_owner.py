"""Two KnowledgeBases, two namespaces, one Redis (issue #15): the second naming the first's index
fails with IndexOwnedByOther in its status and an Event, and the first's callers still hear the
first's content. The ingestion Jobs' command runs here as the kubelet would run it, from the
manifest the operator wrote, and its exit code and result are reported on the Job's pod."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubevox_api.contract import KB_MANIFEST_FILE
from kubevox_devenv.redis import RedisSearchServer

from agent_runtime.knowledge import LocalEmbedder, Retriever
from tests.support.kube import Kubectl, condition, finish_ingest_pod, wait_for
from tests.support.operator_process import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.redis]
Obj = dict[str, Any]


def kb(name: str, ns: str, text: str, index: str | None = None) -> Obj:
    store: Obj = {"redisUrlSecretRef": {"name": "redis", "key": "url"}}
    if index:
        store["indexName"] = index
    return {
        "apiVersion": "kubevox.dev/v1alpha1",
        "kind": "KnowledgeBase",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "sources": [{"name": "hours", "inline": text}],
            "embedding": {"provider": "local"},
            "store": store,
        },
    }


def redis_secret(ns: str, url: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "redis", "namespace": ns},
        "stringData": {"url": url},
    }


def run_ingestion(k: Kubectl, ns: str, kb_name: str, redis_url: str, tmp: Path) -> Obj:
    """What the ingestion Job's pod does, here: `kubevox-agent ingest` on the operator's
    manifest; then the kubelet's report of its exit on the Job's pod."""
    job = wait_for(f"{kb_name}'s Job", lambda: k.list("jobs", ns))[0]["metadata"]["name"]
    cm = wait_for("its manifest", lambda: k.get("configmap", f"{kb_name}-ingest", ns))
    manifest = tmp / f"{ns}-{kb_name}.yaml"
    manifest.write_text(cm["data"][KB_MANIFEST_FILE])
    term = tmp / f"{ns}-{kb_name}.term"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_runtime",
            "ingest",
            "-f",
            str(manifest),
            "--termination-log",
            str(term),
        ],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: Obj = json.loads(term.read_text())
    finish_ingest_pod(k, ns, job, out.returncode, result)
    return result


@pytest.mark.timeout(600)
async def test_a_knowledge_base_cannot_take_over_another_namespaces_index(
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    redis_server: RedisSearchServer,
    tmp_path: Path,
) -> None:
    a, b = namespace, f"{namespace}-b"
    kubectl("create", "namespace", b)
    try:
        for ns in (a, b):
            kubectl.apply(redis_secret(ns, redis_server.url))
        kubectl.apply(kb("docs", a, "The clinic opens at 8 am on Mondays."))
        first = run_ingestion(kubectl, a, "docs", redis_server.url, tmp_path)
        assert first["ok"], first
        index = first["indexName"]
        assert index == f"kb_{a}_docs"
        wait_for(
            "A Ready",
            lambda: (
                condition(kubectl.get("knowledgebase", "docs", a), "Ready").get("status") == "True"
            ),
        )

        # B names A's index explicitly.
        kubectl.apply(kb("docs", b, "The clinic opens at 3 am on Mondays.", index=index))
        second = run_ingestion(kubectl, b, "docs", redis_server.url, tmp_path)
        assert not second["ok"]
        failed = wait_for(
            "IndexOwnedByOther",
            lambda: (
                (c := condition(kubectl.get("knowledgebase", "docs", b), "Failed")).get("reason")
                == "IndexOwnedByOther"
                and c
            ),
            40,
        )
        assert f"KnowledgeBase {a}/docs" in failed["message"]
        events = json.loads(kubectl("get", "events", "-n", b, "-o", "json"))["items"]
        assert any(e["reason"] == "IndexOwnedByOther" for e in events)

        # What A's callers hear is A's content.
        retriever = Retriever.from_url(redis_server.url, index, LocalEmbedder())
        try:
            top = await retriever.retrieve("When does the clinic open on Mondays?", 1)
        finally:
            await retriever.aclose()
        assert "8 am" in top[0].text
        assert condition(kubectl.get("knowledgebase", "docs", a), "Ready").get("status") == "True"
    finally:
        kubectl("delete", "namespace", b, "--wait=false", check=False)
