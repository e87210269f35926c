"""Call recordings with the caller's consent (``spec.recording``): the consent question
(:mod:`.consent`), the recorder (:mod:`.recorder`) and the object storage (:mod:`.storage`)."""

from .consent import Consent, ConsentQuestion, answer_of
from .recorder import CallRecording
from .storage import RecordingStore

__all__ = ["CallRecording", "Consent", "ConsentQuestion", "RecordingStore", "answer_of"]
