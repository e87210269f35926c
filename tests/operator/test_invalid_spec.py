"""Objects the API server holds but the models refuse — stored before a rule kubevox added since
(admission checks writes; etcd keeps what it had), as an Italian agent without phrases was before
issue #18. Nothing is applied for them, what runs stays, and the status and one Event say which
field to fix. Against the in-memory API (fake_api.py); the real API server's side is in
test_voiceagent.py."""

from __future__ import annotations

from kubevox_operator.invalid_spec import REASON

from tests.support.objects import knowledge_base, secrets, voice_agent

from .fake_api import Harness, Obj, harness

NS = "team"
AGENT = ("VoiceAgent", NS, "va")
KB = ("KnowledgeBase", NS, "kb")


def conditions(h: Harness, key: tuple[str, str, str]) -> dict[str, Obj]:
    live = h.api.live(*key)
    assert live is not None
    return {c["type"]: c for c in live["status"]["conditions"]}


def store_unchecked(h: Harness, key: tuple[str, str, str], **spec: object) -> None:
    """A write the models would refuse, as etcd keeps one from before a new rule."""
    obj = h.api.objects[key]
    obj["spec"].update(spec)
    obj["metadata"]["generation"] += 1
    h.api.seed(obj)  # a new resourceVersion
    h.watch(*key)


def with_secrets_and(obj: Obj) -> Harness:
    """A harness holding the namespace's Secrets and ``obj``, as its watch delivered them."""
    h = harness()
    for s in secrets(NS):
        h.api.seed(s)
    h.api.seed(obj)
    h.watch(obj["kind"], NS, obj["metadata"]["name"])
    return h


async def test_an_agent_the_rules_now_refuse_keeps_its_workers_and_says_which_field() -> None:
    h = with_secrets_and(voice_agent("va", NS))
    assert (await h.agents.reconcile(AGENT))[1] == "changed"
    config_hash = h.api.objects[AGENT]["status"]["configHash"]
    h.api.writes.clear()

    store_unchecked(h, AGENT, language="it")  # Italian has no built-in phrases
    assert await h.agents.reconcile(AGENT) == (None, "invalid")
    assert h.api.written() == [("patch-status", "VoiceAgent", "va")]  # no child touched
    conds = conditions(h, AGENT)
    for type_, status in (("Ready", "False"), ("Degraded", "True")):
        assert (conds[type_]["status"], conds[type_]["reason"]) == (status, REASON)
        assert conds[type_]["observedGeneration"] == 2
        assert "spec.phrases: " in conds[type_]["message"]
    live = h.api.live(*AGENT)
    assert live is not None
    assert live["status"]["observedGeneration"] == 2
    assert live["status"]["configHash"] == config_hash  # what the workers still run
    assert h.api.live("Deployment", NS, "va") is not None
    assert await h.event_reasons() == [("Warning", REASON)]

    # Reconciled again (a resync): nothing written, no second Event.
    h.api.writes.clear()
    h.api.events.clear()
    h.watch(*AGENT)
    assert await h.agents.reconcile(AGENT) == (None, "invalid")
    assert h.api.writes == []
    assert await h.event_reasons() == []


async def test_a_knowledge_base_the_rules_refuse_is_failed_and_holds_its_agents() -> None:
    h = with_secrets_and(knowledge_base("kb", NS))
    store_unchecked(h, KB, language="klingon")
    assert await h.knowledge.reconcile(KB) == (None, "invalid")
    conds = conditions(h, KB)
    assert (conds["Failed"]["status"], conds["Failed"]["reason"]) == ("True", REASON)
    assert "spec.language: " in conds["Failed"]["message"]
    assert h.api.written("apply") == []  # no ingestion Job for what cannot be parsed

    h.api.seed(voice_agent("va", NS, knowledgeBases=[{"name": "kb"}]))
    h.watch(*AGENT)
    again, outcome = await h.agents.reconcile(AGENT)
    assert outcome == "blocked"
    assert again is not None  # looked at again later, no crash
    assert h.api.written("apply") == []  # no worker without its knowledge
    ready = conditions(h, AGENT)["Ready"]
    assert ready["status"] == "False"
    assert "KnowledgeBase team/kb is not valid" in ready["message"]
