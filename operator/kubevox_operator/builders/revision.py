"""A VoiceAgent configuration kept for rollback: a ControllerRevision (apps/v1, the object
StatefulSets and DaemonSets keep their history in) holding the VoiceAgent's spec as it was when
the configuration was first applied. ``kubevox-agent rollback`` writes it back. Pure."""

from __future__ import annotations

from typing import Any

from kubevox_api import VoiceAgent, contract

from .common import Obj, agent_labels, agent_metadata, agent_name, child_name

REVISION_KIND = "ControllerRevision"


def revision_name(agent: str, digest: str) -> str:
    """``<agent>-<config hash, 10>``: one object per configuration, whichever revision uses it."""
    return child_name(agent, f"-{digest[:10]}")


def build_revision(
    agent: VoiceAgent, owner: Obj, spec: dict[str, Any], digest: str, generation: int
) -> Obj:
    """The ControllerRevision of configuration ``digest``: ``spec`` is the VoiceAgent's spec as
    the API server stored it (defaults included), ``generation`` the one that applied it."""
    meta = agent_metadata(agent, owner, revision_name(agent_name(agent), digest), "revision")
    meta["labels"] = {**agent_labels(agent, "revision"), contract.LABEL_CONFIG_HASH: digest}
    return {
        "apiVersion": "apps/v1",
        "kind": REVISION_KIND,
        "metadata": meta,
        "data": {"spec": spec},
        "revision": generation,
    }
