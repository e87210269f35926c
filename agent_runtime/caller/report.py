"""The per-turn table ``kubevox-agent call`` prints."""

from __future__ import annotations

import statistics
import textwrap

from .call import CallResult


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def table(results: list[CallResult], width: int = 38) -> str:
    lines = [f"{'call':<5} {'turn':<5} {'caller said':<{width}} {'agent said':<{width}} latency"]
    lines.append("-" * len(lines[0]))
    for n, call in enumerate(results):
        rows: list[tuple[str, str, str, str]] = []
        if call.greeting:
            rows.append(("greet", "", call.greeting, ""))
        for i, turn in enumerate(call.turns, 1):
            latency = f"{turn.latency_ms:.0f} ms" if turn.latency_ms is not None else "no reply"
            rows.append((str(i), turn.said, turn.heard or "-", latency))
        for turn_no, said, heard, latency in rows:
            left, right = _wrap(said, width), _wrap(heard, width)
            for j in range(max(len(left), len(right))):
                first = j == 0
                lines.append(
                    f"{(str(n) if first else ''):<5} {(turn_no if first else ''):<5} "
                    f"{(left[j] if j < len(left) else ''):<{width}} "
                    f"{(right[j] if j < len(right) else ''):<{width}} "
                    f"{latency if first else ''}".rstrip()
                )
        if call.error:
            lines.append(f"{n:<5} error: {call.error}")
    latencies = [t.latency_ms for c in results for t in c.turns if t.latency_ms is not None]
    if latencies:
        lines.append("")
        lines.append(
            f"voice-to-voice latency over {len(latencies)} turns: "
            f"p50 {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
        )
    return "\n".join(lines)
