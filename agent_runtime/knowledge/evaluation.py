"""Retrieval quality on a labelled question set: recall@k and MRR per retrieval mode.

A question is labelled with the source and a short answer phrase; a retrieved chunk is
relevant when it comes from that source and contains the phrase. Labels thereby survive changes
of chunk size, which chunk ids would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubevox_api.languages import TextLanguage

from .models import Chunk
from .retriever import Mode, Retriever

MODES: tuple[Mode, ...] = ("text", "vector", "hybrid")


@dataclass(frozen=True)
class Question:
    q: str
    source: str
    answer: str


@dataclass(frozen=True)
class ModeScore:
    mode: str
    questions: int
    recall: dict[int, float]
    mrr: float

    def row(self, ks: Sequence[int]) -> str:
        cells = " | ".join(f"{self.recall[k]:.3f}" for k in ks)
        return f"| {self.mode} | {cells} | {self.mrr:.3f} |"


def load_questions(path: Path) -> list[Question]:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    return [Question(str(x["q"]), str(x["source"]), str(x["answer"])) for x in raw["questions"]]


def relevant(chunk: Chunk, question: Question) -> bool:
    return chunk.source == question.source and question.answer.lower() in chunk.text.lower()


async def evaluate(
    retriever: Retriever,
    questions: Sequence[Question],
    ks: Sequence[int] = (1, 3, 5),
    depth: int = 10,
    languages: Sequence[TextLanguage] | None = None,
) -> list[ModeScore]:
    """Scores of each mode; the query vector is computed once per question and shared.
    ``languages``: the full-text languages to search in (default: the retriever's choice)."""
    assert retriever.embedder is not None
    vectors = [await retriever.embedder.embed_query(q.q) for q in questions]
    scores = []
    for mode in MODES:
        hits_at = dict.fromkeys(ks, 0)
        rr = 0.0
        for question, vec in zip(questions, vectors, strict=True):
            chunks = await retriever.retrieve(
                question.q, depth, mode=mode, query_vector=vec, languages=languages
            )
            rank = next((i for i, c in enumerate(chunks, 1) if relevant(c, question)), None)
            if rank is not None:
                rr += 1.0 / rank
                for k in ks:
                    hits_at[k] += rank <= k
        n = len(questions)
        scores.append(ModeScore(mode, n, {k: hits_at[k] / n for k in ks}, rr / n))
    return scores


def table(scores: Sequence[ModeScore], ks: Sequence[int] = (1, 3, 5)) -> str:
    head = "| mode | " + " | ".join(f"recall@{k}" for k in ks) + " | MRR@10 |"
    sep = "|---" * (len(ks) + 2) + "|"
    return "\n".join([head, sep, *(s.row(ks) for s in scores)])
