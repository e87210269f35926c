"""The web gateway of a VoiceAgent with ``spec.web``: a call page, and the endpoint that starts a
call for a browser (``kubevox-agent web``)."""
