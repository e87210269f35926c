"""Retrieval quality on a labelled question set: recall@k and MRR per retrieval mode.

A question is labelled with the source and a short answer phrase; a retrieved chunk is
relevant when it comes from that source and contains the phrase. Labels thereby survive changes
of chunk size, which chunk ids would not. A set may also list questions its documents do not
answer (``unanswerable``): they have no recall, only how close their nearest passage comes.
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


@dataclass(frozen=True)
class SetResult:
    """A question set's scores, and for a set with unanswerable questions the similarity of
    each question's nearest passage (both lists empty otherwise)."""

    scores: list[ModeScore]
    answerable_nearest: list[float]
    unanswerable_nearest: list[float]


def load_questions(path: Path) -> list[Question]:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    return [Question(str(x["q"]), str(x["source"]), str(x["answer"])) for x in raw["questions"]]


def load_unanswerable(path: Path) -> list[str]:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    return [str(q) for q in raw.get("unanswerable") or []]


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


async def nearest_similarity(retriever: Retriever, questions: Sequence[str]) -> list[float]:
    """The cosine similarity of each question's nearest passage (vector search): what a
    ``minScore`` floor would compare."""
    out = []
    for q in questions:
        chunks = await retriever.retrieve(q, 1, mode="vector")
        out.append(chunks[0].score if chunks else 0.0)
    return out


def similarity_table(answerable: Sequence[float], unanswerable: Sequence[float]) -> str:
    """Nearest-passage similarity of the answerable and the unanswerable questions, and how many
    answerable ones a floor just above the closest unanswerable one would also refuse."""
    rows = ["| questions | n | mean | min | max |", "|---|---|---|---|---|"]
    for name, sims in (("answerable", answerable), ("unanswerable", unanswerable)):
        if sims:
            cells = [sum(sims) / len(sims), min(sims), max(sims)]
            rows.append(f"| {name} | {len(sims)} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    if unanswerable:
        floor = max(unanswerable)
        lost = sum(s <= floor for s in answerable)
        rows.append(
            f"\nminScore above {floor:.3f} refuses every unanswerable question and "
            f"{lost} of {len(answerable)} answerable ones"
        )
    return "\n".join(rows)
