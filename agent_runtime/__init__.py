"""kubevox agent runtime: the LiveKit Agents worker that runs one VoiceAgent."""

__all__: list[str] = []
