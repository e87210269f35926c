"""Call recordings with the caller's consent (``spec.recording``): the consent question
(:mod:`.consent`), the recorder (:mod:`.recorder`), the object storage (:mod:`.storage`) and
the spool of recordings the storage did not take yet (:mod:`.spool`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from kubevox_api import AgentRuntimeConfig

from .consent import Consent, ConsentQuestion, answer_of
from .recorder import CallRecording
from .spool import Spool, SpoolUploads, agent_storage
from .storage import RecordingStore

__all__ = [
    "CallRecording",
    "Consent",
    "ConsentQuestion",
    "RecordingStore",
    "Spool",
    "SpoolUploads",
    "answer_of",
    "spool_uploads",
]


def spool_uploads(
    config: AgentRuntimeConfig, env: Mapping[str, str] = os.environ
) -> SpoolUploads | None:
    """The worker's retries of its spool, for an agent that records its calls."""
    spec = config.spec.recording
    if spec is None:
        return None
    store, spool = agent_storage(spec.storage, config.namespace, config.name, env)
    return SpoolUploads(spool, store, (config.name, config.namespace))
