"""How well caller sentiment (spec.sentiment) reads a caller, and what it costs a turn:
the runtime's own scorer (agent_runtime.sentiment, VADER) on bench/data/sentiment_eval.yaml,
60 caller turns labelled negative, neutral or positive by a person, 20 of each.

    python bench/sentiment_eval.py [--write-docs]

Agreement is the scorer's label (its own bounds, ±0.05) against the person's; the confusion
table shows where they part. Time is one turn's scoring, after the lexicon is loaded (the
worker loads it in prewarm), measured over every turn of the set, 200 rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "operator"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from llm_eval import write_section  # noqa: E402

from agent_runtime import sentiment  # noqa: E402

EVAL_SET = ROOT / "bench" / "data" / "sentiment_eval.yaml"
TITLE = "### Caller sentiment: agreement with a person, and time per turn (bench/sentiment_eval.py)"
LABELS = ("negative", "neutral", "positive")
ROUNDS = 200


def timings(texts: list[str]) -> list[float]:
    """Seconds to score each turn, every turn ``ROUNDS`` times."""
    sentiment.analyzer()  # loaded once, as the worker's prewarm does
    out = []
    for _ in range(ROUNDS):
        for text in texts:
            start = time.perf_counter()
            sentiment.score(text)
            out.append(time.perf_counter() - start)
    return out


def report(turns: list[dict[str, str]], command: str, load: tuple[float, ...]) -> str:
    pairs = [(t["label"], sentiment.label(sentiment.score(t["text"]))) for t in turns]
    confusion = Counter(pairs)
    agree = sum(n for (said, got), n in confusion.items() if said == got)
    times = sorted(timings([t["text"] for t in turns]))
    p99 = times[int(0.99 * (len(times) - 1))]
    misread = [
        (t["label"], got, t["text"])
        for t, (_, got) in zip(turns, pairs, strict=True)
        if got != t["label"]
    ]
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        TITLE,
        "",
        f"{when}, `{command}` (load {' / '.join(f'{x:.2f}' for x in load)}): {len(turns)} caller "
        "turns of `bench/data/sentiment_eval.yaml`, labelled by a person, scored by the runtime's "
        "`agent_runtime.sentiment` (VADER, its own bounds ±0.05).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| labels agreeing with the person's | **{agree}/{len(turns)}** "
        f"({100 * agree / len(turns):.0f} %) |",
    ]
    for label in LABELS:
        right = confusion[(label, label)]
        total = sum(n for (said, _), n in confusion.items() if said == label)
        lines.append(f"| {label} turns read {label} | {right}/{total} |")
    lines += [
        f"| time per turn, p50 / p99 | {statistics.median(times) * 1e6:.0f} / {p99 * 1e6:.0f} µs |",
        "",
        "| the person said ↓, the scorer read → | " + " | ".join(LABELS) + " |",
        "| --- | --- | --- | --- |",
    ]
    for said in LABELS:
        lines.append(
            f"| {said} | " + " | ".join(str(confusion[(said, got)]) for got in LABELS) + " |"
        )
    lines += ["", "Turns read otherwise:", ""]
    lines += [f'- {said} read {got}: "{text}"' for said, got, text in misread]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write-docs", action="store_true", help="replace the section in docs")
    args = ap.parse_args()
    command = " ".join(["python bench/sentiment_eval.py", *sys.argv[1:]])
    turns = yaml.safe_load(EVAL_SET.read_text())["turns"]
    text = report(turns, command, os.getloadavg())
    print(text)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
