"""The canary rollout's state machine (rollout.py), pass by pass with a clock: what each pass
applies, the split each pool reads, and why it waits, goes on or goes back. No cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubevox_api.voiceagent_rollout import RolloutSpec
from kubevox_operator.rollout import (
    RolloutDecision,
    RolloutObservation,
    Verdict,
    judged_window,
    next_rollout,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SETTLE = 20.0
CANARY = RolloutSpec.model_validate(
    {
        "strategy": "Canary",
        "canary": {
            "steps": [{"weight": 20, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}],
        },
    }
)


class Run:
    """Passes of the reconciler on one agent: the status each leaves is the next one's."""

    def __init__(self, spec: RolloutSpec = CANARY, stable: str = "old", new: str = "new") -> None:
        self.now = T0
        self.status: dict[str, Any] | None = None
        self.base = RolloutObservation(
            spec=spec,
            previous=None,
            stable_hash=stable,
            new_hash=new,
            now=T0,
            settle_seconds=SETTLE,
            stable_follows_split=True,
        )

    def step(self, seconds: float = 0, **seen: Any) -> RolloutDecision:
        self.now += timedelta(seconds=seconds)
        decision = next_rollout(replace(self.base, previous=self.status, now=self.now, **seen))
        self.status = decision.status
        return decision

    @property
    def phase(self) -> str:
        assert self.status is not None
        return str(self.status["phase"])


def test_a_good_change_goes_through_every_step_then_the_stable_pool_takes_it() -> None:
    run = Run()
    d = run.step()
    assert (run.phase, d.split, d.keep_stable, d.canary) == ("Progressing", (20, 0), True, True)
    assert d.event == ("Normal", "CanaryStarted", "configuration new: canary at 20%")
    # The canary's pods are not up: the stable pool yields nothing yet.
    d = run.step(30, canary_available=False)
    assert d.split == (20, 0)
    assert "waiting for the canary's workers" in d.status["message"]  # type: ignore[index]
    d = run.step(5, canary_available=True)  # settled, and available: the stable side follows
    assert d.split == (20, 20)
    assert d.status["message"] == "step 1 of 2: 20% of new calls"  # type: ignore[index]
    d = run.step(30, canary_available=True)  # held for its pause
    assert (d.split, d.event) == ((20, 20), None)
    d = run.step(31, canary_available=True, tests="Running")  # the pause is over; tests run
    assert d.split == (20, 20)
    assert "waiting for the conversation tests" in d.status["message"]  # type: ignore[index]
    d = run.step(1, canary_available=True, tests="Passed")
    # Growing: the canary's weight first, the stable yield a settle later.
    assert (d.split, d.status["step"], d.event[1]) == ((50, 20), 1, "CanaryStep")  # type: ignore[index]
    d = run.step(5, canary_available=True, tests="Passed")
    assert d.split == (50, 20)
    d = run.step(SETTLE, canary_available=True, tests="Passed")
    assert d.split == (50, 50)
    d = run.step(61, canary_available=True, tests="Passed")
    # Every step passed: the stable pool takes the new configuration, the split unchanged.
    assert (run.phase, d.keep_stable, d.canary, d.split) == ("Promoting", False, True, (50, 50))
    assert d.status["stableHash"] == "new"  # type: ignore[index]
    d = run.step(10, tests="Passed", stable_rolled=False)
    assert (run.phase, d.split) == ("Promoting", (50, 50))
    d = run.step(10, tests="Passed", stable_rolled=True)  # then it takes every call
    assert (run.phase, d.split, d.canary) == ("Promoting", (50, 0), True)
    d = run.step(SETTLE, tests="Passed", stable_rolled=True)
    assert (run.phase, d.canary, d.keep_stable) == ("Promoted", False, False)
    assert d.event == ("Normal", "CanaryPromoted", "configuration new takes all calls")
    assert d.status == {  # the canary's fields go
        "phase": "Promoted",
        "stableHash": "new",
        "canaryWeight": 0,
        "stableYield": 0,
        "transitionTime": "2026-12-01T10:03:43Z",
    }


def test_failed_tests_abort_the_first_step_and_the_canary_drains_after_a_settle() -> None:
    run = Run()
    run.step()
    run.step(SETTLE, canary_available=True)
    d = run.step(5, canary_available=True, tests="Failed")
    # Shrinking: the stable pool takes everything first; the canary still runs meanwhile.
    assert (run.phase, d.split, d.keep_stable, d.canary) == ("Aborting", (20, 0), True, True)
    assert "conversation tests failed" in d.status["message"]  # type: ignore[index]
    assert d.event is None  # the Degraded condition's CanaryAborted posts the Event
    d = run.step(SETTLE, tests="Failed")
    assert (run.phase, d.canary, d.keep_stable, d.split) == ("Aborted", False, True, (0, 0))
    # It stays so, the stable configuration kept, until the spec changes.
    d = run.step(600, tests="Failed")
    assert (run.phase, d.canary, d.keep_stable, d.event) == ("Aborted", False, True, None)


def test_metrics_over_a_bound_abort_and_metrics_still_coming_hold_the_step() -> None:
    run = Run()
    run.step()
    run.step(SETTLE, canary_available=True)
    waiting = Verdict("wait", "3 of the 10 calls needed to judge the step", {"calls": 3})
    d = run.step(61, canary_available=True, verdict=waiting)
    assert (run.phase, d.split) == ("Progressing", (20, 20))
    assert d.status["analysis"] == {"calls": 3}  # type: ignore[index]
    assert d.status["message"] == "step 1 of 2: 3 of the 10 calls needed to judge the step"  # type: ignore[index]
    breach = Verdict("breach", "its calls: error rate 0.4 > 0.1 (...maxErrorRate)")
    d = run.step(5, canary_available=True, verdict=breach)
    assert (run.phase, d.split) == ("Aborting", (20, 0))
    assert "error rate 0.4 > 0.1" in d.status["message"]  # type: ignore[index]


def test_another_change_during_a_canary_starts_it_again_from_the_first_step() -> None:
    run = Run()
    run.step()
    run.step(SETTLE, canary_available=True)
    run.step(61, canary_available=True)
    assert run.status is not None
    assert run.status["step"] == 1
    run.base = replace(run.base, new_hash="newer")
    d = run.step(1)
    assert (run.phase, d.split, d.status["canaryHash"], d.status["step"]) == (  # type: ignore[index]
        "Progressing",
        (20, 0),
        "newer",
        0,
    )
    assert d.status["stableHash"] == "old"  # type: ignore[index]


def test_going_back_to_the_stable_configuration_ends_the_canary() -> None:
    run = Run()
    run.step()
    run.base = replace(run.base, new_hash="old")  # git revert, or kubevox-agent rollback
    d = run.step(5)
    assert (run.phase, d.canary, d.keep_stable) == ("Promoted", False, False)


def test_without_a_canary_to_run_the_configuration_rolls_pod_by_pod() -> None:
    rolling = next_rollout(replace(Run().base, spec=RolloutSpec()))
    assert rolling == RolloutDecision(None)
    first = next_rollout(replace(Run().base, stable_hash=None))  # the agent's first workers
    assert (first.status["phase"], first.canary, first.keep_stable) == ("Promoted", False, False)  # type: ignore[index]
    # Strategy Canary just set: the stable pods do not read the split yet.
    unready = next_rollout(replace(Run().base, stable_follows_split=False))
    assert (unready.canary, unready.keep_stable) == (False, False)
    assert "from the next change" in unready.status["message"]  # type: ignore[index]


def test_the_metrics_are_read_only_while_the_canary_holds_its_share() -> None:
    run = Run()
    run.step()
    assert judged_window(run.status, "new", run.now) is None  # widening
    run.step(SETTLE, canary_available=True)
    assert judged_window(run.status, "new", run.now + timedelta(seconds=42)) == 42
    assert judged_window(run.status, "other", run.now) is None
