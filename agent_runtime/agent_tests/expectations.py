"""What one turn of a conversation test did, and which of its expectations it missed.

Pure functions of an observed turn: the runner (:mod:`.runner`) records what the agent said,
called and was given to read; :func:`missed` says, one line per expectation, what did not hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubevox_api.voiceagenttest import Expectations

from ..grounding_guard import GroundingGuard, evidence_of
from ..text import key_terms, split_sentences


@dataclass(frozen=True)
class Passage:
    """A knowledge-base excerpt the agent was given to answer the turn."""

    source: str
    text: str


@dataclass(frozen=True)
class ObservedTurn:
    """What happened after the caller spoke."""

    said: str
    reply: str
    tools: tuple[str, ...] = ()
    passages: tuple[Passage, ...] = ()
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Judges:
    """What the agent's own refusal and support look like (its phrases, guard settings and
    language), for ``refuses`` and ``groundedIn``."""

    refusal: str
    guard: GroundingGuard = field(default_factory=GroundingGuard)


_ABBREVIATION_DOT = re.compile(r"(?<=[^\W\d_])\.(?=[^\W\d_])")
_PUNCTUATION = re.compile(r"(?!(?<=\d)[.:,](?=\d))[^\w\s']")


def comparable(text: str) -> str:
    """``text`` as ``contains`` compares it: case, punctuation and spacing aside, so that what
    a transcriber writes "9 a.m." still contains "9 am" (numbers keep their "4.5" and "9:30")."""
    text = _PUNCTUATION.sub(" ", _ABBREVIATION_DOT.sub("", text.casefold()))
    return " ".join(text.split())


def _quoted(items: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in items)


def _factual(sentence: str, guard: GroundingGuard) -> bool:
    """A sentence that states something (a refusal or a greeting without facts does not)."""
    return bool(key_terms(sentence, guard.language)) and not guard.check(sentence, []).supported


def _grounding_misses(
    sources: Sequence[str], turn: ObservedTurn, guard: GroundingGuard
) -> list[str]:
    facts = [s for s in split_sentences(turn.reply) if _factual(s, guard)]
    if not facts:
        return [f"groundedIn {_quoted(sources)}: the reply states nothing to ground"]
    out = []
    every_passage = evidence_of([p.text for p in turn.passages], guard.language)
    unsupported = [s for s in facts if not guard.check(s, every_passage).supported]
    if unsupported:
        out.append(f"groundedIn: not supported by the passages retrieved: {_quoted(unsupported)}")
    for source in sources:
        own = [p.text for p in turn.passages if p.source == source]
        if not own:
            out.append(f"groundedIn {source!r}: none of its passages was retrieved")
            continue
        evidence = evidence_of(own, guard.language)
        if not any(guard.check(s, evidence).supported for s in facts):
            out.append(f"groundedIn {source!r}: no sentence of the reply is supported by it")
    return out


def missed(expect: Expectations, turn: ObservedTurn, judges: Judges) -> list[str]:
    """Each expectation of ``expect`` that ``turn`` did not meet, as a line naming it."""
    reply = comparable(turn.reply)
    out = [
        f"contains {t!r}: not in the reply" for t in expect.contains if comparable(t) not in reply
    ]
    out += [
        f"notContains {t!r}: in the reply" for t in expect.not_contains if comparable(t) in reply
    ]
    if expect.grounded_in:
        out += _grounding_misses(expect.grounded_in, turn, judges.guard)
    if expect.refuses is not None:
        refused = comparable(judges.refusal) in reply
        if expect.refuses and not refused:
            out.append(f"refuses: the reply is not the agent's refusal {judges.refusal!r}")
        elif refused and not expect.refuses:
            out.append("refuses false: the agent refused")
    out += [f"calls {t}: not called" for t in expect.calls if t not in turn.tools]
    out += [f"notCalls {t}: called" for t in expect.not_calls if t in turn.tools]
    if expect.max_latency_ms is not None and turn.latency_ms > expect.max_latency_ms:
        out.append(f"maxLatencyMs {expect.max_latency_ms}: took {turn.latency_ms:.0f} ms")
    return out
