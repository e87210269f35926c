"""``kubevox-agent rollback``: put a VoiceAgent back on an earlier configuration, in an incident.

The operator keeps each configuration it applied in ``status.revisions`` and its spec in a
ControllerRevision (labels ``kubevox.dev/voiceagent`` and ``kubevox.dev/config-hash``). This
writes that spec back to the VoiceAgent, only if the VoiceAgent has not changed since it was read
(a JSON patch testing its resourceVersion); the operator then applies it as any other change.
Under GitOps the lasting rollback is in Git: Argo CD with self-heal re-applies Git's spec.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from kubevox_api import contract

from ..errors import ConfigError

NAME = "rollback"
HELP = "Put a VoiceAgent back on an earlier configuration (its status.revisions)."
ARGO_CD_TRACKING = ("argocd.argoproj.io/tracking-id", "argocd.argoproj.io/instance")

Obj = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("agent", help="the VoiceAgent's name")
    parser.add_argument(
        "-n", "--namespace", default=None, help="its namespace (default: the context's)"
    )
    parser.add_argument(
        "--to",
        metavar="CONFIG_HASH",
        help="the configuration to go back to (a configHash of status.revisions; default: the "
        "newest earlier one whose tests passed, else the previous one)",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context")


def target_revision(status: Obj, wanted: str | None) -> Obj:
    """The revision to go back to; a ConfigError says why there is none."""
    revisions: list[Obj] = status.get("revisions") or []
    current = status.get("configHash")
    if wanted:
        found = [r for r in revisions if str(r.get("configHash", "")).startswith(wanted)]
        if not found:
            known = ", ".join(str(r.get("configHash")) for r in revisions) or "none"
            raise ConfigError(f"--to {wanted}: no such revision (status.revisions: {known})")
        return found[0]
    earlier = [r for r in revisions if r.get("configHash") != current]
    if not earlier:
        raise ConfigError("no earlier configuration in status.revisions to go back to")
    return next((r for r in earlier if r.get("tests") == "Passed"), earlier[0])


def rollback_patch(agent: Obj, spec: Obj) -> list[Obj]:
    """Replace the spec, only if the VoiceAgent is still the one read."""
    version = agent["metadata"]["resourceVersion"]
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "replace", "path": "/spec", "value": spec},
    ]


def _connect(kubeconfig: str | None, context: str | None) -> str:
    """Load the kubeconfig (else the pod's service account); the context's namespace."""
    from kubernetes import config

    try:
        config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str(chosen.get("context", {}).get("namespace") or "default")


def _kept_spec(ns: str, agent: Obj, digest: str) -> Obj:
    """The spec the operator kept for configuration ``digest`` of ``agent``."""
    from kubernetes import client

    name, uid = agent["metadata"]["name"], agent["metadata"]["uid"]
    selector = f"{contract.LABEL_VOICE_AGENT}={name},{contract.LABEL_CONFIG_HASH}={digest}"
    kept = client.AppsV1Api().list_namespaced_controller_revision(ns, label_selector=selector)
    for revision in kept.items:
        owners = revision.metadata.owner_references if revision.metadata else None
        if any(o.uid == uid for o in owners or []):
            return dict(revision.data["spec"])
    raise ConfigError(f"configuration {digest}: its spec is not kept (no ControllerRevision)")


def run(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ns = _connect(args.kubeconfig, args.context)  # loads the credentials too
    ns = args.namespace or ns
    objects = client.CustomObjectsApi()
    group, version = contract.API_VERSION.split("/")
    where = f"VoiceAgent {ns}/{args.agent}"
    try:
        agent = cast(
            Obj,
            objects.get_namespaced_custom_object(
                group, version, ns, contract.VOICE_AGENT_PLURAL, args.agent
            ),
        )
    except ApiException as e:
        raise ConfigError(f"{where}: {e.reason}") from e
    target = target_revision(agent.get("status") or {}, args.to)
    digest = str(target["configHash"])
    spec = _kept_spec(ns, agent, digest)
    try:
        objects.patch_namespaced_custom_object(
            group,
            version,
            ns,
            contract.VOICE_AGENT_PLURAL,
            args.agent,
            rollback_patch(agent, spec),
            _content_type="application/json-patch+json",
        )
    except ApiException as e:
        if e.status == 422:
            raise ConfigError(f"{where} changed while rolling back: run it again") from e
        raise ConfigError(f"{where}: {e.reason}: {e.body}") from e
    tests = target.get("tests") or "not tested"
    print(
        f"{where}: spec of configuration {digest} written back (first "
        f"applied at generation {target.get('generation')}, tests {tests}); the operator "
        "applies it now"
    )
    meta = agent["metadata"]
    tracked = {**(meta.get("annotations") or {}), **(meta.get("labels") or {})}
    if any(key in tracked for key in ARGO_CD_TRACKING):
        print(
            "note: Argo CD manages this VoiceAgent: with self-heal it puts Git's spec back;"
            " revert the change in Git (or roll the Application back with auto-sync off)",
            file=sys.stderr,
        )
    return 0
