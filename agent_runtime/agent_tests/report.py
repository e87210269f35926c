"""A suite's results for people (a table) and for machines (JSON)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from .runner import CaseResult

COLUMNS = ("CASE", "TURN", "RESULT", "LATENCY", "DETAIL")


def _rows(result: CaseResult) -> list[tuple[str, ...]]:
    """(case, turn, result, latency, detail, whether the detail may be shortened)."""
    rows: list[tuple[str, ...]] = []
    for i, t in enumerate(result.turns, start=1):
        latency = f"{t.turn.latency_ms:.0f} ms"
        if t.failures:
            rows.append((result.name, str(i), "FAIL", latency, "; ".join(t.failures), ""))
            rows.append(("", "", "", "", f"the reply: {t.turn.reply!r}", "short"))
        else:
            rows.append((result.name, str(i), "pass", latency, t.turn.reply, "short"))
    if result.verdict is not None:
        state = "pass" if result.verdict.passed else "FAIL"
        rows.append((result.name, "rubric", state, "", result.verdict.reason, ""))
    rows += [(result.name, "case", "FAIL", "", f, "") for f in result.failures]
    return rows


def table(results: Sequence[CaseResult], width: int | None = None) -> str:
    """One row per turn and per rubric: the reply when it passed (cut to the terminal's
    width), what failed otherwise (whole: that is what the reader needs), the reply below it."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    rows = [(*COLUMNS, ""), *(r for result in results for r in _rows(result))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    room = max(20, width - sum(widths) - 2 * len(widths))
    lines = []
    for *cells, detail, shortened in rows:
        if shortened and len(detail) > room:
            detail = detail[: room - 1] + "…"
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        lines.append("  ".join([*padded, detail]).rstrip())
    passed = sum(r.passed for r in results)
    lines.append(f"{len(results)} cases: {passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def as_json(results: Sequence[CaseResult]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "passed": r.passed,
            "greeting": r.greeting,
            "turns": [
                {
                    "said": t.turn.said,
                    "reply": t.turn.reply,
                    "tools": list(t.turn.tools),
                    "sources": sorted({p.source for p in t.turn.passages}),
                    "latencyMs": round(t.turn.latency_ms, 1),
                    "failures": t.failures,
                }
                for t in r.turns
            ],
            "rubric": None
            if r.verdict is None
            else {"passed": r.verdict.passed, "reason": r.verdict.reason},
            "failures": r.failures,
        }
        for r in results
    ]
