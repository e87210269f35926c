"""The LiveKit worker: an AgentServer in production mode serving one VoiceAgent.

The parent process registers with LiveKit, reports load and serves health (:8081) and
metrics; each call runs in a pre-warmed child process, or with ``spec.scaling.executor: thread``
in a thread of the parent (``prewarm`` loads the config and the VAD once per process or thread,
the local models once per process; ``entrypoint`` runs one call).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from kubevox_api import CONFIG_ENV, AgentRuntimeConfig, contract
from kubevox_api.runtime_config import LIVEKIT_URL_ENV, config_hash
from kubevox_api.sizing import WARM_JOBS
from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess, inference, room_io
from livekit.agents.utils.hw import get_cpu_monitor

from . import call_events, metrics, sentiment
from .agent import full_instructions
from .call_data import call_data
from .call_events.lifecycle import CallLifecycle
from .callrecord import CallRecord
from .config import load_runtime_config
from .knowledge.runtime import prewarm_embedders
from .knowledge_hook import build_grounding
from .load import LOAD_THRESHOLD, WorkerLoad
from .one_worker import earlier_worker
from .plugins.local_llm import prime_prompt_cache
from .pod_memory import memory_fraction
from .providers import prewarm_providers
from .recording import CallRecording
from .session import build_call
from .traffic_split import CallFilter

log = logging.getLogger("kubevox.worker")

HEALTH_PORT = contract.HEALTH_PORT


def active_calls(server: AgentServer) -> int:
    """Calls in progress: jobs running in this worker's processes (0 before it starts)."""
    try:
        return len(server.active_jobs)
    except AttributeError:  # the process pool exists only once the server runs
        return 0


def active_dispatches(server: AgentServer) -> list[str]:
    """The LiveKit dispatch id of each call in progress ('' for a job dispatched without one)."""
    try:
        return [info.job.dispatch_id for info in server.active_jobs]
    except AttributeError:
        return []


JOB_MODULES = (
    # The call's entrypoint and all it imports (providers, knowledge, call events...): once in
    # livekit's forkserver, shared copy-on-write by every job process, instead of imported and
    # held privately by each.
    __name__,
    # The knowledge bases' embedding models, loaded there once for all job processes.
    "agent_runtime.shared_models",
    # What the openai SDK imports on a call's first request, on that call's loop (100-150 ms each).
    "openai.lib.streaming.chat",
    "openai.pagination",
    "jiter",
)
"""Modules the ``process`` executor's job processes inherit already imported (issue 20)."""
PRELOAD_ENV = "KUBEVOX_PRELOAD_JOB_MODULES"
"""``0``: the job processes import JOB_MODULES themselves, as before (bench/capacity.py measures
both in one run)."""


PREWARM_TIMEOUT = 120.0
"""Seconds a job process may take to load its models before livekit gives up on it."""


CPU_WEIGHT_ENV = "KUBEVOX_CPU_LOAD_WEIGHT"
"""How much CPU counts in the load (0..1, default 1); see :func:`load.compute_load`."""


def worker_load(config: AgentRuntimeConfig) -> WorkerLoad:
    """The load this worker reports, measured from its calls and its pod's CPU."""
    return WorkerLoad(
        config.spec.scaling.max_calls_per_pod,
        min(max(float(os.environ.get(CPU_WEIGHT_ENV, "1")), 0.0), 1.0),
        # Blocks for its sampling interval, in LiveKit's executor thread.
        cpu_sample=lambda: get_cpu_monitor().cpu_percent(interval=0.2),
        memory_sample=memory_fraction,
    )


def prewarm(proc: JobProcess) -> None:
    """Once per job process, before any call: config, VAD, turn detector, offline models."""
    config = load_runtime_config(os.environ[CONFIG_ENV])
    proc.userdata["config"] = config
    proc.userdata["config_hash"] = config_hash(config)
    metrics.start_call_series(config.name, config.namespace, proc.userdata["config_hash"])
    if config.spec.sentiment is not None:
        metrics.start_sentiment_series(config.name, config.namespace, proc.userdata["config_hash"])
        sentiment.analyzer()  # VADER's lexicon, read before the first call
    proc.userdata["vad"] = inference.VAD()
    if config.spec.turn_detection.mode == "model":
        inference.TurnDetector(version="v1-mini")
    prewarm_providers(config)
    # The outbox's client, made once per process (it connects on first use, in the job's loop).
    proc.userdata["call_events"] = call_events.from_config(config, os.environ)
    prewarm_embedders(config.knowledge_bases, os.environ)
    if config.spec.llm.provider == "local":
        prime_prompt_cache(full_instructions(config), grounded=bool(config.knowledge_bases))


class RoomControls:
    """Call controls in a LiveKit room."""

    def __init__(self, ctx: JobContext, caller: rtc.RemoteParticipant) -> None:
        self._ctx = ctx
        self._caller = caller

    def caller_is_phone(self) -> bool:
        return self._caller.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP

    async def transfer(self, to: str) -> None:
        await self._ctx.transfer_sip_participant(self._caller, to)


HANG_UP_OUTCOMES = ("agent_ended", "max_duration", "silence_timeout")
SIP_PHONE_NUMBER = "sip.phoneNumber"
"""The participant attribute LiveKit SIP gives a phone caller's number in."""


async def entrypoint(ctx: JobContext) -> None:
    config: AgentRuntimeConfig = ctx.proc.userdata["config"]
    await ctx.connect()
    if (other := earlier_worker(ctx.room, config.agent_name)) is not None:
        log.info(
            "another worker serves this call: leaving it",
            extra={"room": ctx.room.name, "serving": other.identity},
        )
        ctx.shutdown(reason="served by another worker")
        return
    try:
        # A dispatch whose caller never joins (or left first) must not hold a call slot.
        caller = await asyncio.wait_for(
            ctx.wait_for_participant(), config.spec.silence_timeout_seconds
        )
    except TimeoutError:
        log.warning(
            "no caller joined within silenceTimeoutSeconds; leaving the room",
            extra={"room": ctx.room.name, "job_id": ctx.job.id},
        )
        ctx.shutdown(reason="no caller")
        return
    phone = caller.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
    record = CallRecord.of(
        config,
        ctx.job.id,
        ctx.room.name,
        ctx.proc.userdata["config_hash"],
        caller="phone" if phone else "web",
        caller_number=caller.attributes.get(SIP_PHONE_NUMBER) if phone else None,
    )
    lifecycle = CallLifecycle(ctx.proc.userdata.get("call_events"), record)
    lifecycle.started()
    recording = CallRecording.of(config, record, os.environ)
    grounding = build_grounding(config)
    # The knowledge bases' connections and common terms load while the agent greets.
    warming = asyncio.create_task(grounding.warm()) if grounding is not None else None
    call = build_call(
        config,
        record=record,
        controls=RoomControls(ctx, caller),
        grounding=grounding,
        vad_model=ctx.proc.userdata["vad"],
        call_data=call_data(config, ctx.job.metadata),
        recording=recording,
    )
    if recording is not None:
        listen_for_consent_key(ctx.room, caller, recording)
    done = asyncio.Event()

    def on_close(_ev: Any) -> None:
        if record.outcome in HANG_UP_OUTCOMES:
            # Deleting the room hangs up phone callers too.
            ctx.add_shutdown_callback(lambda: _delete_room(ctx))
        done.set()

    call.session.on("close", on_close)
    # The record is in the outbox (spec.callEvents) before the call's end is acknowledged.
    ctx.add_shutdown_callback(lifecycle.end)
    if recording is not None:  # uploaded once the caller is gone (and the record is out)
        ctx.add_shutdown_callback(recording.finish)
    await call.session.start(
        agent=call.agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(participant_identity=caller.identity),
    )
    await done.wait()
    if warming is not None:
        warming.cancel()  # a call shorter than the warm-up
    ctx.shutdown(reason=record.outcome or "session closed")


def listen_for_consent_key(
    room: rtc.Room, caller: rtc.RemoteParticipant, recording: CallRecording
) -> None:
    """A phone caller's keypad (DTMF, through LiveKit SIP) answers the recording's notice."""

    def on_dtmf(ev: rtc.SipDTMF) -> None:
        sender = ev.participant.identity if ev.participant is not None else None
        if recording.question is not None and sender == caller.identity:
            recording.question.pressed(ev.digit)

    room.on("sip_dtmf_received", on_dtmf)


async def _delete_room(ctx: JobContext) -> None:
    try:
        await ctx.delete_room()
    except Exception:
        log.exception("could not delete the room", extra={"room": ctx.room.name})


def make_server(
    config: AgentRuntimeConfig, load: WorkerLoad, *, health_port: int = HEALTH_PORT
) -> AgentServer:
    spec = config.spec
    preload = os.environ.get(PRELOAD_ENV) != "0"
    server = AgentServer(
        drain_timeout=spec.drain_timeout_seconds,
        load_threshold=LOAD_THRESHOLD,
        load_fnc=lambda s: load.measure(active_calls(s)),
        setup_fnc=prewarm,
        port=health_port,
        # As many as the pod was sized for (kubevox_api/sizing.py), whatever the node's cores.
        num_idle_processes=min(spec.scaling.max_calls_per_pod, WARM_JOBS),
        # $LIVEKIT_URL (set by the operator from the same spec) lets a local run point
        # the worker elsewhere, as every LiveKit SDK allows.
        ws_url=os.environ.get(LIVEKIT_URL_ENV) or spec.livekit.url,
        # Offline models load in prewarm: a process may need longer than livekit's 10 s.
        initialize_process_timeout=PREWARM_TIMEOUT,
        job_executor_type=JobExecutorType(spec.scaling.executor),
        preload_modules=list(JOB_MODULES) if preload else [],
    )
    calls = CallFilter.from_env(config_hash(config))
    server.rtc_session(entrypoint, agent_name=config.agent_name, on_request=calls.on_request)
    return server
