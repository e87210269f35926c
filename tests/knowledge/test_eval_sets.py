"""The evaluation sets of bench/knowledge_eval.py are sound: labels every chunking can match, and
a French set parallel to the English one that is as hard for full-text search.

No Redis: these read the sets' files and cut their documents as ingestion does."""

from __future__ import annotations

import pytest

from .helpers import bench_module

MOD = bench_module()
PARALLEL = (MOD.SETS["en"], MOD.SETS["fr-parallel"])


@pytest.mark.parametrize("name", sorted(MOD.SETS))
def test_set_is_labelled_and_large_enough(name: str) -> None:
    """At least 50 answerable questions, some unanswerable, and every answer phrase in a passage
    of its source at both chunk sizes (a label no chunk can match would count as a miss)."""
    directory = MOD.SETS[name]
    questions = MOD.load_questions(directory / "questions.yaml")
    assert len(questions) >= 50
    assert len(MOD.load_unanswerable(directory / "questions.yaml")) >= 5
    for size, overlap in ((96, 16), (256, 32)):
        chunks = MOD.passages(directory, size, overlap)
        assert {q.source for q in questions} == {c.source for c in chunks}
        unmatched = [q.q for q in questions if not any(MOD.relevant(c, q) for c in chunks)]
        assert unmatched == [], (size, unmatched)


def test_parallel_set_translates_the_english_one() -> None:
    """One French question per English one, in the same order and with the same source; the same
    documents (file names) and as many unanswerable questions."""
    en, fr = PARALLEL
    en_questions = MOD.load_questions(en / "questions.yaml")
    fr_questions = MOD.load_questions(fr / "questions.yaml")
    assert [q.source for q in fr_questions] == [q.source for q in en_questions]
    assert sorted(p.name for p in (fr / "docs").iterdir()) == sorted(
        p.name for p in (en / "docs").iterdir()
    )
    assert len(MOD.load_unanswerable(fr / "questions.yaml")) == len(
        MOD.load_unanswerable(en / "questions.yaml")
    )


@pytest.mark.parametrize(("size", "overlap"), [(96, 16), (256, 32)])
def test_parallel_set_shares_as_many_words_with_its_answers(size: int, overlap: int) -> None:
    """The French questions paraphrase their documents as much as the English ones do (mean
    lexical overlap within 0.05; measured 0.631 and 0.658 against 0.637), so that a difference in
    retrieval is the language's, not the questions'. The town hall set is much harder (0.42)."""
    en, fr = (
        MOD.lexical_overlap(d, lang, size, overlap)
        for d, lang in zip(PARALLEL, ("english", "french"), strict=True)
    )
    assert abs(sum(fr) / len(fr) - sum(en) / len(en)) <= 0.05, (size, en, fr)
