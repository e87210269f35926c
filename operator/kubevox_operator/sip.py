"""Declarative SIP: the LiveKit inbound trunk and dispatch rule of a VoiceAgent with telephony.

Pure functions build the wanted trunk and rule from the spec and decide what to change;
``LiveKitSIP`` is the thin I/O layer over livekit-api's Twirp client. LiveKit has no labels and
no watch, so the operator finds its objects again by their metadata (a small JSON naming the
VoiceAgent): a restart, or a status lost, never leads to a duplicate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from kubevox_api import contract
from kubevox_api.voiceagent_telephony import SIPTelephony
from livekit import api
from livekit.api import ServerError

from .egress import AddressRefused
from .livekit_client import NETWORK, LiveKitClient
from .status import Problem

log = logging.getLogger("kubevox.sip")


@dataclass(frozen=True)
class Owner:
    """The VoiceAgent a LiveKit object belongs to."""

    namespace: str
    name: str
    uid: str

    @property
    def object_name(self) -> str:
        return f"kubevox/{self.namespace}/{self.name}"

    def metadata(self) -> str:
        # Identity is namespace/name; the uid says which incarnation last wrote it.
        return json.dumps(
            {
                "managedBy": contract.MANAGED_BY,
                "namespace": self.namespace,
                "name": self.name,
                "uid": self.uid,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def owns(self, metadata: str) -> bool:
        """True for objects this operator made for this VoiceAgent (any incarnation: a leftover
        of a deleted namesake is adopted rather than left to conflict on its numbers)."""
        try:
            meta = json.loads(metadata or "{}")
        except ValueError:
            return False
        return (
            isinstance(meta, dict)
            and meta.get("managedBy") == contract.MANAGED_BY
            and meta.get("namespace") == self.namespace
            and meta.get("name") == self.name
        )


# --- the wanted objects (pure) ------------------------------------------------------------------


def desired_trunk(
    owner: Owner, sip: SIPTelephony, auth: tuple[str, str] | None
) -> api.SIPInboundTrunkInfo:
    username, password = auth or ("", "")
    return api.SIPInboundTrunkInfo(
        name=owner.object_name,
        metadata=owner.metadata(),
        numbers=list(sip.phone_numbers),
        allowed_addresses=list(sip.allowed_addresses),
        auth_username=username,
        auth_password=password,
    )


def desired_rule(
    owner: Owner, sip: SIPTelephony, agent_name: str, trunk_id: str
) -> api.SIPDispatchRuleInfo:
    return api.SIPDispatchRuleInfo(
        name=owner.object_name,
        metadata=owner.metadata(),
        trunk_ids=[trunk_id],
        # One room per call, named <prefix><random>; the agent is dispatched explicitly.
        rule=api.SIPDispatchRule(
            dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=sip.room_prefix)
        ),
        room_config=api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)]),
    )


def trunk_in_step(live: api.SIPInboundTrunkInfo, want: api.SIPInboundTrunkInfo) -> bool:
    """Compares only what the operator sets (order of numbers and addresses is not meaning)."""
    return (
        live.name == want.name
        and live.metadata == want.metadata
        and sorted(live.numbers) == sorted(want.numbers)
        and sorted(live.allowed_addresses) == sorted(want.allowed_addresses)
        and live.auth_username == want.auth_username
        and live.auth_password == want.auth_password
        and not live.allowed_numbers  # someone narrowing the trunk behind our back is drift
    )


def rule_in_step(live: api.SIPDispatchRuleInfo, want: api.SIPDispatchRuleInfo) -> bool:
    return (
        live.name == want.name
        and live.metadata == want.metadata
        and list(live.trunk_ids) == list(want.trunk_ids)
        and live.rule == want.rule
        and [a.agent_name for a in live.room_config.agents]
        == [a.agent_name for a in want.room_config.agents]
        and not live.inbound_numbers
        and not live.room_config.name
    )


class _Owned(Protocol):
    @property
    def metadata(self) -> str: ...


T = TypeVar("T", bound=_Owned)
R = TypeVar("R")


@dataclass
class Plan(Generic[T]):
    keep: T | None
    """The object to keep (and update if not in step); None: create one."""
    extra: list[T] = field(default_factory=list)
    """Further objects of the same owner (a crashed create, two operators): deleted."""


def plan(owner: Owner, live: Sequence[T], ident: Callable[[T], str], prefer: str | None) -> Plan[T]:
    """Which of the live objects is ours to keep; the status' id wins, else the first listed."""
    mine = [o for o in live if owner.owns(o.metadata)]
    if not mine:
        return Plan(None)
    keep = next((o for o in mine if ident(o) == prefer), mine[0])
    return Plan(keep, [o for o in mine if o is not keep])


# --- errors -------------------------------------------------------------------------------------


class SIPError(Exception):
    """A LiveKit failure, as a status Problem; retried with backoff, logged without traceback."""

    expected = True

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def refused_problem(url: str, why: str) -> Problem:
    return Problem("LiveKitAddressRefused", f"spec.livekit.url {url}: {why}")


def as_problem(exc: BaseException, url: str) -> Problem:
    cause = getattr(exc, "os_error", None) or exc  # aiohttp wraps its resolver's error
    if isinstance(cause, AddressRefused):
        return refused_problem(url, str(cause))
    if isinstance(exc, ServerError):
        status = exc.status
        if status in (401, 403):
            return Problem(
                "LiveKitUnauthorized",
                f"LiveKit at {url} refused the API key of spec.livekit.credentialsSecretRef "
                f"(HTTP {status})",
            )
        return Problem("LiveKitRejected", f"LiveKit at {url} refused: {exc.message or exc.code}")
    if isinstance(exc, NETWORK):
        return Problem(
            "LiveKitUnreachable", f"LiveKit at {url} is unreachable: {exc or type(exc).__name__}"
        )
    raise exc


# --- I/O ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    trunk_id: str
    rule_id: str
    writes: list[str]
    """What was written, e.g. ``created trunk ST_x`` (for the log; empty when in step)."""


class LiveKitSIP(LiveKitClient):
    """The SIP API of one LiveKit server (one HTTP session; use as an async context manager)."""

    def refused(self, why: str) -> Exception:
        return SIPError(refused_problem(self.url, why))

    async def _call(self, coro: Awaitable[R]) -> R:
        try:
            return await coro
        except (ServerError, *NETWORK) as exc:
            raise SIPError(as_problem(exc, self.url)) from None

    async def trunks(self) -> list[api.SIPInboundTrunkInfo]:
        resp: api.ListSIPInboundTrunkResponse = await self._call(
            self._lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
        )
        return list(resp.items)

    async def rules(self) -> list[api.SIPDispatchRuleInfo]:
        resp: api.ListSIPDispatchRuleResponse = await self._call(
            self._lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
        )
        return list(resp.items)

    async def sync(
        self,
        owner: Owner,
        trunk: api.SIPInboundTrunkInfo,
        rule_for: Callable[[str], api.SIPDispatchRuleInfo],
        prefer: tuple[str | None, str | None] = (None, None),
    ) -> SyncResult:
        """Make LiveKit hold exactly one trunk and one rule for ``owner``, as wanted. Reads
        first and writes only what differs: an idle resync writes nothing."""
        writes: list[str] = []
        tp = plan(owner, await self.trunks(), lambda t: t.sip_trunk_id, prefer[0])
        rp = plan(owner, await self.rules(), lambda r: r.sip_dispatch_rule_id, prefer[1])
        # Rules first: a rule must not outlive the trunk it points to.
        for r in rp.extra:
            await self._delete_rule(r.sip_dispatch_rule_id)
            writes.append(f"deleted duplicate rule {r.sip_dispatch_rule_id}")
        for t in tp.extra:  # before an update, or its numbers would conflict with ours
            await self._delete_trunk(t.sip_trunk_id)
            writes.append(f"deleted duplicate trunk {t.sip_trunk_id}")
        if tp.keep is None:
            live_trunk: api.SIPInboundTrunkInfo = await self._call(
                self._lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk))
            )
            writes.append(f"created trunk {live_trunk.sip_trunk_id}")
        elif not trunk_in_step(tp.keep, trunk):
            live_trunk = await self._call(
                self._lk.sip.update_inbound_trunk(tp.keep.sip_trunk_id, trunk)
            )
            writes.append(f"updated trunk {live_trunk.sip_trunk_id}")
        else:
            live_trunk = tp.keep
        trunk_id = live_trunk.sip_trunk_id
        rule = rule_for(trunk_id)
        if rp.keep is None:
            live_rule: api.SIPDispatchRuleInfo = await self._call(
                self._lk.sip.create_dispatch_rule(
                    api.CreateSIPDispatchRuleRequest(dispatch_rule=rule)
                )
            )
            writes.append(f"created rule {live_rule.sip_dispatch_rule_id}")
        elif not rule_in_step(rp.keep, rule):
            live_rule = await self._call(
                self._lk.sip.update_dispatch_rule(rp.keep.sip_dispatch_rule_id, rule)
            )
            writes.append(f"updated rule {live_rule.sip_dispatch_rule_id}")
        else:
            live_rule = rp.keep
        return SyncResult(trunk_id, live_rule.sip_dispatch_rule_id, writes)

    async def remove(self, owner: Owner) -> list[str]:
        """Delete every trunk and rule of ``owner``; returns their ids (empty: none was left)."""
        gone: list[str] = []
        for r in await self.rules():
            if owner.owns(r.metadata):
                await self._delete_rule(r.sip_dispatch_rule_id)
                gone.append(r.sip_dispatch_rule_id)
        for t in await self.trunks():
            if owner.owns(t.metadata):
                await self._delete_trunk(t.sip_trunk_id)
                gone.append(t.sip_trunk_id)
        return gone

    async def _delete_rule(self, rule_id: str) -> None:
        try:
            await self._lk.sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
            )
        except ServerError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise SIPError(as_problem(exc, self.url)) from None
        except NETWORK as exc:
            raise SIPError(as_problem(exc, self.url)) from None

    async def _delete_trunk(self, trunk_id: str) -> None:
        try:
            await self._lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))
        except ServerError as exc:
            if exc.status != 404:
                raise SIPError(as_problem(exc, self.url)) from None
        except NETWORK as exc:
            raise SIPError(as_problem(exc, self.url)) from None
