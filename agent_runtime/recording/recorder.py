"""One call's recording: livekit-agents' own RecorderIO (both sides in one stereo Ogg Opus file,
the caller left, the agent as played right; its encoder runs in a thread of its own) joined to
the call only once the call is to be recorded, and uploaded when the call ends (or, if the
storage is away then, from the worker's spool: spool.py).

Nothing before consent is kept: RecorderIO holds every frame it is given until it starts, so it
is attached at the moment recording starts, not at the call's start. The upload runs in the
job's shutdown, after the caller is gone: it never delays a turn or a hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubevox_api import AgentRuntimeConfig
from kubevox_api.voiceagent_recording import RecordingSpec
from livekit.agents.voice import AgentSession
from livekit.agents.voice.recorder_io import RecorderIO

from .. import metrics
from ..callrecord import CallRecord
from .consent import Consent, ConsentQuestion
from .spool import Spool, Spooled, agent_storage, spool_dir
from .storage import RecordingStore

log = logging.getLogger("kubevox.recording")

SAMPLE_RATE = 16000
"""The recording's rate: wideband voice, as an HD phone call (a phone line carries 8 kHz), and a
third of the encoding and resampling of livekit's default 48 kHz. That work shares the worker's
core (and Python's GIL) with the calls: on a quiet core neither rate cost a turn anything
measurable, but with other work on the machine 48 kHz did (bench/recording_latency.py,
docs/benchmarks.md)."""


class CallRecording:
    """The recording of one call of an agent with ``spec.recording``."""

    def __init__(
        self,
        spec: RecordingSpec,
        language: str,
        record: CallRecord,
        store: RecordingStore,
        directory: Path | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.spec = spec
        self.language = language
        self.record = record
        self.store = store
        self._dir = directory or Path(tempfile.gettempdir())
        self.spool = spool or Spool(spool_dir(record.namespace, record.agent))
        self._recorder: RecorderIO | None = None
        self._path: Path | None = None
        self._name: str | None = None
        self.question: ConsentQuestion | None = None

    @classmethod
    def of(
        cls, config: AgentRuntimeConfig, record: CallRecord, env: Mapping[str, str]
    ) -> CallRecording | None:
        spec = config.spec.recording
        if spec is None:
            return None
        store, spool = agent_storage(spec.storage, config.namespace, config.name, env)
        return cls(spec, config.spec.language, record, store, spool=spool)

    def ask(self) -> ConsentQuestion:
        """Opens the question the notice asks (``consent: required``)."""
        self.question = ConsentQuestion(self.language, self.spec.consent_key)
        return self.question

    def settle(self, consent: Consent) -> None:
        """Writes the consent into the call record (and the object it will be, if recorded);
        the first settlement stands."""
        if self.record.recording is not None:
            return
        self.record.recording = {
            "consent": consent.result,
            "consent_by": consent.by,
            "object": None,
        }
        if consent.recorded:
            started = datetime.fromtimestamp(self.record.started_at, UTC)
            self._name = self.store.object_name(self.record.call_id, started)
            self.record.recording["object"] = self._name
        log.info(
            "recording consent",
            extra={"call_id": self.record.call_id, "consent": consent.result, "by": consent.by},
        )

    def call_closing(self) -> None:
        """The call ends: a question still open (the caller left during the notice, or before
        answering) is settled as no answer, so the record says so."""
        if self.record.recording is None:
            self.settle(Consent("no_answer"))

    async def start(self, session: AgentSession[Any]) -> None:
        """Joins the recorder to the call's audio, both ways, and starts it."""
        if self._name is None or self._recorder is not None or session.input.audio is None:
            return
        if session.output.audio is None:
            return
        recorder = RecorderIO(agent_session=session, sample_rate=SAMPLE_RATE)
        session.input.audio = recorder.record_input(session.input.audio)
        session.output.audio = recorder.record_output(session.output.audio)
        self._path = self._dir / f"kubevox-recording-{self.record.call_id}.ogg"
        await recorder.start(output_path=self._path)
        self._recorder = recorder

    async def finish(self) -> None:
        """Closes the file and uploads it (the job's shutdown). A failed upload leaves the file
        in the worker's spool, which the worker uploads again (spool.py)."""
        if self._recorder is None or self._path is None or self._name is None:
            return
        labels = (self.record.agent, self.record.namespace)
        upload = Spooled(self._name, self.record.call_id, self.record.caller_number)
        try:
            await self._recorder.aclose()
            await asyncio.to_thread(
                self.store.upload, self._path, upload.name, upload.call_id, upload.caller_number
            )
        except Exception as e:
            metrics.recording_uploads.labels(*labels, "failed").inc()
            # The error's text, not the request: MinIO's errors carry no credentials.
            log.error(
                "recording upload failed: kept in the spool for another try",
                extra={"call_id": self.record.call_id, "object": self._name, "error": str(e)},
            )
            self._keep(upload)
            return
        metrics.recording_uploads.labels(*labels, "uploaded").inc()
        log.info("recording uploaded", extra={"call_id": self.record.call_id})
        with contextlib.suppress(OSError):
            self._path.unlink()

    def _keep(self, upload: Spooled) -> None:
        assert self._path is not None
        try:
            self.spool.keep(self._path, upload)
        except OSError as e:  # nothing to keep (the recorder never wrote it), or no room
            log.error(
                "recording lost: not kept in the spool",
                extra={"call_id": upload.call_id, "error": str(e)},
            )
            with contextlib.suppress(OSError):
                self._path.unlink()
