"""Call recordings with the caller's consent (``spec.recording``): both sides of a call in one
stereo Ogg Opus file, uploaded to S3-compatible object storage when the call ends, kept
``retentionDays``, erasable per call or per phone number.

The agent says the team's own ``notice`` first. With ``consent: required`` the recording starts
only after the caller agrees (a spoken yes, or ``consentKey`` on a phone's keypad); anything else
(no, an unclear answer, silence) leaves the call unrecorded, and the call record says which.
agent_runtime/recording does the runtime's part; the operator owns the expiry CronJob.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .base import KubeModel
from .common import SecretKeySelector

ConsentMode = Literal["notice", "required"]
"""``notice``: the caller is told, and the call is recorded from the notice on. ``required``:
the caller must agree first, else the call is not recorded."""

STORAGE_ACCESS_KEY_ENV = "KUBEVOX_RECORDING_ACCESS_KEY"
STORAGE_SECRET_KEY_ENV = "KUBEVOX_RECORDING_SECRET_KEY"
"""The environment variables with the storage's key pair (from ``storage``'s Secret keys)."""


class RecordingStorage(KubeModel):
    """S3-compatible object storage (AWS S3, MinIO, Ceph RGW, GCS's XML API, ...). kubevox
    creates no bucket: name one that exists."""

    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+$", max_length=512)]
    """The storage's endpoint, scheme and host (and port) only, e.g.
    ``https://s3.eu-west-1.amazonaws.com`` or ``http://minio.storage.svc:9000``. The workers'
    egress is opened to it."""
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    """The bucket the recordings go to."""
    prefix: Annotated[
        str, StringConstraints(pattern=r"^([A-Za-z0-9!_.*'()-]+/)*$", max_length=256)
    ] = ""
    """Put before every object's name (e.g. ``recordings/``); each ends with ``/``. Objects are
    named ``<prefix><namespace>/<agent>/<date>/<call id>.ogg``."""
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")] = "us-east-1"
    """The region requests are signed for."""
    access_key_ref: SecretKeySelector
    """The Secret key holding the access key id."""
    secret_key_ref: SecretKeySelector
    """The Secret key holding the secret access key. It also keys the HMAC that stands for a
    phone caller's number on their recordings (the number itself is stored nowhere)."""


class RecordingSpec(KubeModel):
    """Record calls, both sides, with the caller's consent."""

    consent: ConsentMode = "required"
    """``required`` (default): recorded only after the caller agrees; ``notice``: the caller is
    told, and the call is recorded from the notice on."""
    notice: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    """What the agent says first, in ``language`` (e.g. "This call may be recorded to improve
    our service. Is that all right? Say yes, or press 1."). With ``required``, ask a question the
    caller answers with yes or no."""
    consent_key: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")] = "1"
    """The phone keypad key that agrees (DTMF); ``required`` only."""
    answer_timeout_seconds: float = Field(default=8.0, ge=2, le=30)
    """How long the agent waits for the answer after the notice (``required``); silence is a
    no."""
    storage: RecordingStorage
    """Where the recordings go."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Recordings older than this are deleted by a daily CronJob the agent owns
    (``<agent>-recordings-expiry``)."""
