"""What the controller says about a referenced Secret key, from the Secret as read."""

from __future__ import annotations

from kubevox_api.common import SecretKeySelector
from kubevox_operator.secret_reader import secret_problem


def test_missing_secret_missing_key_and_present_key() -> None:
    ref = SecretKeySelector(name="providers", key="openai")
    missing = secret_problem(None, "team", ref)
    assert missing is not None
    assert (missing.reason, missing.message) == ("SecretMissing", "Secret team/providers not found")
    no_key = secret_problem({"data": {"deepgram": "eA=="}}, "team", ref)
    assert no_key is not None
    assert no_key.reason == "SecretKeyMissing"
    assert "'openai'" in no_key.message
    assert secret_problem({"data": {"openai": "eA=="}}, "team", ref) is None
    assert secret_problem({"stringData": {"openai": "x"}}, "team", ref) is None
