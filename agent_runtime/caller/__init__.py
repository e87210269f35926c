"""The simulated caller behind ``kubevox-agent call``: a LiveKit participant that talks to an
agent and measures voice-to-voice latency on the audio."""

from .call import CallOptions, CallResult, SimulatedCall, TurnResult, run_calls

__all__ = ["CallOptions", "CallResult", "SimulatedCall", "TurnResult", "run_calls"]
