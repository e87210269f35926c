"""The recordings' object storage (``recording.storage``): S3-compatible, through MinIO's client.

Objects are named ``<prefix><namespace>/<agent>/<YYYY-MM-DD>/<call id>.ogg``, so one agent's
recordings are listed under one prefix (expiry) and a call's is found by its id (erasure). A
phone caller's recordings carry an HMAC-SHA256 of their number, keyed by the storage's secret
key: their number is stored nowhere, cannot be recovered by trying every number without that
key, and still finds every recording of theirs for an erasure request.

The client is synchronous (urllib3): the runtime calls it in a thread, never in a call's loop.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from kubevox_api.voiceagent_recording import (
    STORAGE_ACCESS_KEY_ENV,
    STORAGE_SECRET_KEY_ENV,
    RecordingStorage,
)
from minio import Minio
from minio.deleteobjects import DeleteObject

from ..errors import ConfigError

CONTENT_TYPE = "audio/ogg"
CALL_ID_META = "call-id"
CALLER_META = "caller"
"""User metadata (``x-amz-meta-*``): the call's id, and the HMAC of a phone caller's number."""


def digits(number: str) -> str:
    """A phone number as its digits (and ``+``), however it was written."""
    return "".join(c for c in number if c.isdigit() or c == "+")


def call_of(name: str) -> str:
    """The call id a recording's name ends with."""
    return name.rsplit("/", 1)[-1].removesuffix(".ogg")


def _key(env: Mapping[str, str], var: str) -> str:
    if not (value := env.get(var)):
        raise ConfigError(f"{var}: not set (from spec.recording.storage)")
    return value


@dataclass(frozen=True)
class Stored:
    """One recording in the bucket."""

    name: str
    modified: datetime


class RecordingStore:
    """One agent's recordings in its bucket."""

    def __init__(
        self, storage: RecordingStorage, namespace: str, agent: str, env: Mapping[str, str]
    ) -> None:
        url = urlsplit(storage.endpoint)
        access_key, self._secret = (
            _key(env, var) for var in (STORAGE_ACCESS_KEY_ENV, STORAGE_SECRET_KEY_ENV)
        )
        self.client = Minio(
            url.netloc,
            access_key=access_key,
            secret_key=self._secret,
            secure=url.scheme == "https",
            region=storage.region,
        )
        self.bucket = storage.bucket
        self.prefix = f"{storage.prefix}{namespace}/{agent}/"

    def object_name(self, call_id: str, started: datetime) -> str:
        return f"{self.prefix}{started.astimezone(UTC):%Y-%m-%d}/{call_id}.ogg"

    def caller_tag(self, number: str) -> str:
        """The HMAC that stands for a phone number (digits and ``+`` only are kept)."""
        return hmac.new(self._secret.encode(), digits(number).encode(), hashlib.sha256).hexdigest()

    def upload(self, path: Path, name: str, call_id: str, caller_number: str | None) -> None:
        metadata = {CALL_ID_META: call_id}
        if caller_number:
            metadata[CALLER_META] = self.caller_tag(caller_number)
        self.client.fput_object(
            self.bucket,
            name,
            str(path),
            content_type=CONTENT_TYPE,
            metadata=metadata,  # type: ignore[arg-type]
        )

    def recordings(self) -> Iterator[Stored]:
        """Every recording of the agent."""
        for obj in self.client.list_objects(self.bucket, prefix=self.prefix, recursive=True):
            if obj.object_name and obj.last_modified:
                yield Stored(obj.object_name, obj.last_modified)

    def recordings_names(self) -> list[str]:
        return [r.name for r in self.recordings()]

    def older_than(self, days: int, now: datetime | None = None) -> list[str]:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        return [r.name for r in self.recordings() if r.modified < cutoff]

    def of_call(self, call_id: str) -> list[str]:
        return [r.name for r in self.recordings() if call_of(r.name) == call_id]

    def of_caller(self, number: str) -> list[str]:
        """Every recording of a phone number (its HMAC, read from each object's metadata)."""
        tag = self.caller_tag(number)
        found = []
        for r in self.recordings():
            meta = self.client.stat_object(self.bucket, r.name).metadata or {}
            if meta.get(f"x-amz-meta-{CALLER_META}") == tag:
                found.append(r.name)
        return found

    def delete(self, names: list[str]) -> list[str]:
        """Deletes ``names``; returns those the storage failed to delete."""
        errors = self.client.remove_objects(self.bucket, [DeleteObject(n) for n in names])
        return [e.name for e in errors if e.name]
