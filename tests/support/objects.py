"""Manifests the tests apply."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def secrets(ns: str) -> list[Obj]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "livekit", "namespace": ns},
            "stringData": {"apiKey": "devkey", "apiSecret": "secret"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "providers", "namespace": ns},
            "stringData": {
                "deepgram": "dg-SECRET-1",
                "openai": "oa-SECRET-2",
                "cartesia": "ca-SECRET-3",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis", "namespace": ns},
            "stringData": {"url": "redis://redis:6379/0"},
        },
    ]


def voice_agent(name: str, ns: str, **spec: Any) -> Obj:
    base: Obj = {
        "instructions": "You are a helpful clinic assistant.",
        "livekit": {"url": "ws://livekit:7880", "credentialsSecretRef": {"name": "livekit"}},
        "stt": {
            "provider": "deepgram",
            "credentials": {"secretKeyRef": {"name": "providers", "key": "deepgram"}},
        },
        "llm": {
            "provider": "openai",
            "model": "gpt-4.1-mini",
            "credentials": {"secretKeyRef": {"name": "providers", "key": "openai"}},
        },
        "tts": {
            "provider": "cartesia",
            "credentials": {"secretKeyRef": {"name": "providers", "key": "cartesia"}},
        },
        "scaling": {
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetCallsPerPod": 2,
            "maxCallsPerPod": 4,
            "scaleDownStabilizationSeconds": 300,
        },
        "drainTimeoutSeconds": 1800,
    }
    base.update(spec)
    return {
        "apiVersion": "kubevox.dev/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": name, "namespace": ns},
        "spec": base,
    }


def agent_test(name: str, ns: str, agent: str = "va", *cases: Obj) -> Obj:
    """A VoiceAgentTest of ``agent``; by default one case about the opening hours."""
    default = {
        "name": "hours",
        "turns": [{"say": "When do you open?", "expect": {"contains": ["8"]}}],
    }
    return {
        "apiVersion": "kubevox.dev/v1alpha1",
        "kind": "VoiceAgentTest",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"agentRef": agent, "cases": list(cases) or [default]},
    }


def knowledge_base(name: str, ns: str, text: str = "The clinic opens at 8 am.") -> Obj:
    return {
        "apiVersion": "kubevox.dev/v1alpha1",
        "kind": "KnowledgeBase",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "sources": [
                {"name": "facts", "inline": text},
                {"name": "faq", "configMap": {"name": "faq"}},
            ],
            "embedding": {"provider": "local"},
            "store": {"redisUrlSecretRef": {"name": "redis", "key": "url"}},
        },
    }


def faq(ns: str, text: str = "Q: Parking? A: Behind the building.") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "faq", "namespace": ns},
        "data": {"faq.md": text},
    }


def ingest_result(ok: bool = True, documents: int = 2, chunks: int = 5, message: str = "") -> Obj:
    """The JSON `kubevox-agent ingest --termination-log` writes (IngestResult.to_json)."""
    return {
        "ok": ok,
        "changed": ok,
        "indexName": "kb",
        "message": message
        or (f"indexed {documents} documents" if ok else "source faq: cannot parse"),
        "activeIndex": "kb-v1" if ok else None,
        "documents": documents if ok else 0,
        "chunks": chunks if ok else 0,
        "durationSeconds": 1.25,
        "lastIndexedTime": "2026-01-01T00:00:00Z" if ok else None,
        "sourceErrors": [] if ok else [{"source": "faq", "message": "cannot parse"}],
    }


def service_monitor_crd() -> Obj:
    """The prometheus-operator ServiceMonitor CRD, cut to its identity (schema left open)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {
                "kind": "ServiceMonitor",
                "listKind": "ServiceMonitorList",
                "plural": "servicemonitors",
                "singular": "servicemonitor",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
