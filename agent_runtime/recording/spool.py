"""Recordings whose upload failed, kept in the worker's spool directory and uploaded again by the
worker's parent process until the storage takes them.

A call's job uploads its recording when the call ends; if the storage is away (down, refusing,
unreachable) the file moves to the spool with what its upload needs, instead of being lost. The
parent retries the spool in a thread of its own, with the call events' backoff, from its start
(what a restarted container left) to its exit (a last pass while it drains). In a pod the spool
is on the pod's emptyDir: it outlives a container's restart, not the pod; a recording still
spooled when its pod is deleted is lost, and the worker logs each one it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import metrics
from ..call_events.delivery import Backoff
from .storage import RecordingStore

if TYPE_CHECKING:
    from kubevox_api.voiceagent_recording import RecordingStorage

log = logging.getLogger("kubevox.recording")

SPOOL_ENV = "KUBEVOX_RECORDING_SPOOL"
"""Where spools are; by default ``kubevox-recordings`` in the temporary directory (in a pod, the
emptyDir the operator mounts there). Each agent's is ``<namespace>/<name>`` in it: workers of
several agents on one machine never upload each other's recordings."""
RETRY_INITIAL_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
MAX_SPOOL_BYTES = 512 * 1024 * 1024
"""Most a spool holds: half the pod's 1 GiB emptyDir, which the kubelet would evict the pod
(and its live calls) for filling. A recording beyond it is lost, and logged."""


@dataclass(frozen=True)
class Spooled:
    """A recording waiting for the storage: its file and what its upload names."""

    name: str
    call_id: str
    caller_number: str | None


def spool_dir(namespace: str, agent: str, env: Mapping[str, str] = os.environ) -> Path:
    root = Path(env.get(SPOOL_ENV) or Path(tempfile.gettempdir()) / "kubevox-recordings")
    return root / namespace / agent


def agent_storage(
    storage: RecordingStorage, namespace: str, agent: str, env: Mapping[str, str]
) -> tuple[RecordingStore, Spool]:
    """An agent's bucket and its spool: where its calls' jobs put recordings, and where the
    worker's parent takes them from."""
    return RecordingStore(storage, namespace, agent, env), Spool(spool_dir(namespace, agent, env))


class Spool:
    """One worker's spool: ``<call_id>.ogg`` and ``<call_id>.json`` (its upload's names); the
    metadata is written last, so a recording is pending only once whole."""

    def __init__(self, directory: Path, max_bytes: int = MAX_SPOOL_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def keep(self, path: Path, upload: Spooled) -> None:
        """Moves ``path`` into the spool; OSError if it cannot (no file, no room)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        held = sum(f.stat().st_size for f in self.directory.glob("*.ogg"))
        if held + path.stat().st_size > self.max_bytes:
            raise OSError(f"the spool is full ({held} bytes held, at most {self.max_bytes})")
        audio = self._audio(upload.call_id)
        shutil.move(path, audio)  # a rename where both are in the temporary directory
        meta = self._meta(upload.call_id)
        part = meta.with_suffix(".part")
        part.write_text(json.dumps(asdict(upload)))
        os.replace(part, meta)

    def pending(self) -> list[tuple[Path, Spooled]]:
        out = []
        for meta in sorted(self.directory.glob("*.json")):
            try:
                upload = Spooled(**json.loads(meta.read_text()))
            except (OSError, ValueError, TypeError):
                log.error("a spooled recording's metadata is unreadable", extra={"file": meta.name})
                continue
            if (audio := self._audio(upload.call_id)).exists():
                out.append((audio, upload))
        return out

    def done(self, call_id: str) -> None:
        for path in (self._meta(call_id), self._audio(call_id)):
            path.unlink(missing_ok=True)

    def _audio(self, call_id: str) -> Path:
        return self.directory / f"{call_id}.ogg"

    def _meta(self, call_id: str) -> Path:
        return self.directory / f"{call_id}.json"


class SpoolUploads:
    """The parent's retries of the spool (run by a call_events.background.DeliveryThread)."""

    def __init__(self, spool: Spool, store: RecordingStore, labels: tuple[str, str]) -> None:
        self.spool = spool
        self.store = store
        self.labels = labels
        """The agent's metric labels (name, namespace)."""
        self.backoff = Backoff(RETRY_INITIAL_SECONDS, RETRY_MAX_SECONDS)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = RETRY_INITIAL_SECONDS if await self.upload_pending() else self.backoff.next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        await self.upload_pending()  # a last pass on the way out
        for _, left in self.spool.pending():
            log.error("recording left in the spool", extra={"call_id": left.call_id})

    async def upload_pending(self) -> bool:
        """Uploads what the spool holds; False if the storage refused one (the rest wait)."""
        for path, upload in self.spool.pending():
            try:
                await asyncio.to_thread(
                    self.store.upload, path, upload.name, upload.call_id, upload.caller_number
                )
            except Exception as e:
                log.warning(
                    "spooled recording not uploaded yet",
                    extra={"call_id": upload.call_id, "error": str(e)},
                )
                return False
            self.spool.done(upload.call_id)
            self.backoff.reset()
            metrics.recording_uploads.labels(*self.labels, "uploaded").inc()
            log.info("spooled recording uploaded", extra={"call_id": upload.call_id})
        return True

    async def aclose(self) -> None:
        return None
