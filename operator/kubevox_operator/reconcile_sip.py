"""The SIP part of the VoiceAgent reconcile: the agent's LiveKit trunk and dispatch rule kept in
step with spec.telephony.sip, and the ``kubevox.dev/sip`` finalizer that removes them."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from kubevox_api import VoiceAgent, contract
from kubevox_api.voiceagent_telephony import SIPTelephony
from pydantic import ValidationError

from .egress import Network
from .events import Events
from .kube import ApiError
from .secret_reader import Secrets
from .sip import LiveKitSIP, Owner, SIPError, desired_rule, desired_trunk
from .status import Problem, TelephonyObservation
from .store import Store
from .workqueue import Key, WorkQueue

Obj = dict[str, Any]
Credentials = tuple[str, str, str]  # LiveKit url, API key, API secret
log = logging.getLogger("kubevox.controller")


def deleted_for(body: Obj) -> float:
    """Seconds since the object's deletionTimestamp (0 when it has none)."""
    stamp = (body.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return 0.0
    return time.time() - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


class AgentSIP:
    """Each VoiceAgent's trunk and dispatch rule in LiveKit, and their removal on deletion."""

    def __init__(
        self,
        store: Store,
        secrets: Secrets,
        events: Events,
        queue: WorkQueue,
        livekit_allowed: tuple[Network, ...],
        cleanup_timeout_seconds: float,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.events = events
        self.queue = queue
        self.livekit_allowed = livekit_allowed
        self.cleanup_timeout_seconds = cleanup_timeout_seconds
        # The last LiveKit url/key/secret that worked per agent: its SIP objects can still be
        # removed when the namespace's deletion took the credentials Secret first.
        self._livekit: dict[tuple[str, str], Credentials] = {}

    def forget(self, ns: str, name: str) -> None:
        """The agent is gone: its remembered credentials too."""
        self._livekit.pop((ns, name), None)

    async def livekit_credentials(self, agent: VoiceAgent, ns: str) -> Credentials | Problem:
        ref = agent.spec.livekit.credentials_secret_ref
        values = await self.secrets.values(
            ns, ref.name, [ref.api_key_key, ref.api_secret_key], "spec.livekit.credentialsSecretRef"
        )
        if isinstance(values, Problem):
            return values
        return agent.spec.livekit.url, values[0], values[1]

    async def reconcile(
        self, agent: VoiceAgent, body: Obj, sip: SIPTelephony
    ) -> tuple[Obj, TelephonyObservation, bool]:
        """Keeps the agent's LiveKit trunk and dispatch rule in step. Returns the (possibly
        patched) body, what to report and whether anything was written."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        prev = body.get("status") or {}
        known = (prev.get("sipTrunkId"), prev.get("sipDispatchRuleId"))
        wrote = False
        if contract.SIP_FINALIZER not in (meta.get("finalizers") or []):
            # Before anything exists in LiveKit, so that no deletion can leave it behind.
            body = await self._set_finalizer(body, add=True)
            wrote = True
        creds = await self.livekit_credentials(agent, ns)
        if isinstance(creds, Problem):
            return body, TelephonyObservation(*known, creds), wrote
        auth: tuple[str, str] | None = None
        if sip.auth is not None:
            values = await self.secrets.values(
                ns,
                sip.auth.secret_ref,
                [sip.auth.username_key, sip.auth.password_key],
                "spec.telephony.sip.auth.secretRef",
            )
            if isinstance(values, Problem):
                return body, TelephonyObservation(*known, values), wrote
            auth = (values[0], values[1])
        owner = Owner(ns, name, meta.get("uid", ""))
        agent_name = agent.effective_agent_name
        try:
            async with LiveKitSIP(*creds, self.livekit_allowed) as lk:
                result = await lk.sync(
                    owner,
                    desired_trunk(owner, sip, auth),
                    lambda trunk_id: desired_rule(owner, sip, agent_name, trunk_id),
                    known,
                )
        except SIPError as exc:
            before: Obj = next(
                (c for c in prev.get("conditions", []) or [] if c.get("type") == "TelephonyReady"),
                {},
            )
            # Logged once per new reason; the retries at backoff pace stay at debug level.
            new = before.get("reason") != exc.problem.reason
            log.log(
                logging.WARNING if new else logging.DEBUG,
                "VoiceAgent %s/%s: SIP not in step: %s",
                ns,
                name,
                exc.problem.message,
            )
            return body, TelephonyObservation(*known, exc.problem), wrote
        self._livekit[(ns, name)] = creds
        for what in result.writes:
            log.info("VoiceAgent %s/%s: SIP %s", ns, name, what)
        return (
            body,
            TelephonyObservation(result.trunk_id, result.rule_id),
            wrote or bool(result.writes),
        )

    async def remove(self, agent: VoiceAgent | None, body: Obj) -> Problem | None:
        """Deletes the agent's LiveKit SIP objects, then releases the finalizer. A Problem when
        LiveKit could not be asked (the finalizer stays, the caller retries)."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        creds: Credentials | Problem | None = (
            await self.livekit_credentials(agent, ns) if agent is not None else None
        )
        if not isinstance(creds, tuple):
            creds = self._livekit.get((ns, name))
        if creds is None:
            # Without credentials LiveKit cannot be asked at all; blocking the deletion forever
            # (e.g. the namespace is going away and took the Secret first) would be worse.
            prev = body.get("status") or {}
            log.warning(
                "VoiceAgent %s/%s: no LiveKit credentials to remove SIP trunk %s and rule %s; "
                "releasing the finalizer, remove them by hand",
                ns,
                name,
                prev.get("sipTrunkId"),
                prev.get("sipDispatchRuleId"),
            )
        else:
            try:
                async with LiveKitSIP(*creds, self.livekit_allowed) as lk:
                    gone = await lk.remove(Owner(ns, name, meta.get("uid", "")))
            except SIPError as exc:
                log.warning(
                    "VoiceAgent %s/%s: cannot remove SIP objects yet: %s",
                    ns,
                    name,
                    exc.problem.message,
                )
                return exc.problem
            if gone:
                log.info("VoiceAgent %s/%s: SIP deleted %s", ns, name, ", ".join(gone))
        await self._set_finalizer(body, add=False)
        self._livekit.pop((ns, name), None)
        return None

    async def finalize(self, key: Key, body: Obj) -> tuple[float | None, str]:
        """A deleted agent still holding the SIP finalizer: its LiveKit objects go first."""
        try:
            agent: VoiceAgent | None = VoiceAgent.model_validate(body)
        except ValidationError:
            agent = None  # admission rejects such specs; use remembered credentials if any
        problem = await self.remove(agent, body)
        if problem is not None:
            left = self.cleanup_timeout_seconds - deleted_for(body)
            if left > 0:
                return min(self.queue.backoff(key), left), "blocked"
            await self._abandon(body, problem)
        self.queue.forget(key)
        return None, "deleted"

    async def _abandon(self, body: Obj, problem: Problem) -> None:
        """LiveKit stayed out of reach for the whole wait: the VoiceAgent (and its namespace)
        may go, and the Event and the log say what may be left there."""
        meta, st = body["metadata"], body.get("status") or {}
        message = (
            f"LiveKit did not answer for {self.cleanup_timeout_seconds:g}s after "
            f"deletion ({problem.message}); finalizer released: SIP trunk "
            f"{st.get('sipTrunkId') or '(id unknown)'} and dispatch rule "
            f"{st.get('sipDispatchRuleId') or '(id unknown)'} (named "
            f"kubevox/{meta['namespace']}/{meta['name']}) may be left in LiveKit; delete them "
            "there"
        )
        log.warning("VoiceAgent %s/%s: %s", meta["namespace"], meta["name"], message)
        await self.events.post(body, "Warning", "SIPCleanupAbandoned", message)
        await self._set_finalizer(body, add=False)
        self._livekit.pop((meta["namespace"], meta["name"]), None)

    async def _set_finalizer(self, body: Obj, *, add: bool) -> Obj:
        """Adds or removes the SIP finalizer by a conditional JSON patch (a concurrent change
        fails the ``test`` op and is retried, never overwritten)."""
        meta = body["metadata"]
        current: list[str] = list(meta.get("finalizers") or [])
        rv = meta.get("resourceVersion")
        if add:
            ops: list[Obj] = (
                [
                    {"op": "test", "path": "/metadata/finalizers", "value": current},
                    {
                        "op": "add",
                        "path": "/metadata/finalizers/-",
                        "value": contract.SIP_FINALIZER,
                    },
                ]
                if current
                else [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                    {
                        "op": "add",
                        "path": "/metadata/finalizers",
                        "value": [contract.SIP_FINALIZER],
                    },
                ]
            )
        else:
            i = current.index(contract.SIP_FINALIZER)
            ops = [
                {
                    "op": "test",
                    "path": f"/metadata/finalizers/{i}",
                    "value": contract.SIP_FINALIZER,
                },
                {"op": "remove", "path": f"/metadata/finalizers/{i}"},
            ]
        try:
            result = await self.store.api.json_patch(
                contract.VOICE_AGENT_KIND, meta["namespace"], meta["name"], ops
            )
        except ApiError as exc:
            if exc.status == 404 and not add:
                return body  # already gone
            raise
        if not result["metadata"].get("deletionTimestamp"):
            self.store.remember(
                contract.VOICE_AGENT_KIND, result
            )  # never resurrect one whose deletion ends
        return result
