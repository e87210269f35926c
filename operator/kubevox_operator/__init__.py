"""kubevox operator: reconciles VoiceAgents and KnowledgeBases (kopf)."""

__version__ = "0.1.0"
