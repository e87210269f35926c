"""Retrieval quality of the knowledge base with a local embedder, on one of the evaluation sets:

* ``en``: tests/knowledge/eval/, a clinic's documents and 72 questions (the default);
* ``fr-parallel``: tests/knowledge/eval_fr_parallel/, the same documents and questions translated
  into French one for one, so that its figures differ from the English ones by language only;
* ``fr-townhall``: tests/knowledge/eval_fr_townhall/, an independent French set (a town hall),
  whose questions share fewer words with their answers than the English ones do.

    python bench/knowledge_eval.py [--set en|fr-parallel|fr-townhall]
        [--model all-MiniLM-L6-v2-static] [--redis-url URL] [--size 96 --overlap 16]
    python bench/knowledge_eval.py --mixed [--model M] [--size 96 --overlap 16]
    python bench/knowledge_eval.py --lexical-overlap [--size 96 --overlap 16]

Starts its own Redis with search (kubevox_devenv) unless --redis-url/REDIS_URL is given,
ingests the evaluation documents (a French set's as ``language: fr``), and prints recall@k and
MRR for text-only, vector-only and hybrid retrieval; for a set with unanswerable questions, also
how close their nearest passage comes compared with the answerable ones. ``--mixed``: the English
documents and their French translations (fr-parallel's, named ``<document>-fr``) in one
knowledge base, the English and French questions scored apart, for each way of searching a
question's full text (:data:`STRATEGIES`). ``--lexical-overlap`` needs no Redis: it prints, for
every set, how many of a question's words its answering passage contains (:func:`lexical_overlap`),
the set's difficulty for full-text search.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import snowballstemmer

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE_TESTS = ROOT / "tests" / "knowledge"
SETS = {
    "en": KNOWLEDGE_TESTS / "eval",
    "fr-parallel": KNOWLEDGE_TESTS / "eval_fr_parallel",
    "fr-townhall": KNOWLEDGE_TESTS / "eval_fr_townhall",
}
LANGUAGES = {"en": "english", "fr-parallel": "french", "fr-townhall": "french"}
"""Each set's language, as Snowball names it (``--lexical-overlap``)."""
EVAL_DIR = SETS["en"]
for extra in (ROOT, ROOT / "operator", ROOT / "hack" / "devenv"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from kubevox_api import KnowledgeBase  # noqa: E402
from kubevox_api.knowledgebase import (  # noqa: E402
    LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    Embedding,
)
from kubevox_api.languages import KnowledgeLanguage, TextLanguage  # noqa: E402

from agent_runtime.knowledge import Embedder, Retriever, connect, ingest, make_embedder  # noqa: E402
from agent_runtime.knowledge.chunking import ChunkingOptions, chunk_document  # noqa: E402
from agent_runtime.knowledge.evaluation import (  # noqa: E402
    ModeScore,
    Question,
    SetResult,
    evaluate,
    load_questions,
    load_unanswerable,
    nearest_similarity,
    relevant,
    similarity_table,
    table,
)
from agent_runtime.knowledge.extract import extract  # noqa: E402
from agent_runtime.knowledge.models import ChunkRecord, RawDocument  # noqa: E402
from agent_runtime.text import tokenise  # noqa: E402
from agent_runtime.text_languages import QUERY_STOPWORDS  # noqa: E402

SET_LANGUAGES: dict[Path, KnowledgeLanguage] = {
    SETS["en"]: "en",
    SETS["fr-parallel"]: "fr",
    SETS["fr-townhall"]: "fr",
}
"""Each set's ``spec.language``."""


def eval_knowledge_base(
    size: int = 96, overlap: int = 16, index: str = "kb-eval", eval_dir: Path = EVAL_DIR
) -> KnowledgeBase:
    """One inline source per document, named after the file (the questions' labels), in the
    set's language (``fr`` for a French set: French stems and stop words)."""
    sources: list[dict[str, Any]] = [
        {"name": p.stem, "inline": p.read_text()} for p in sorted((eval_dir / "docs").iterdir())
    ]
    return KnowledgeBase.model_validate(
        {
            "metadata": {"name": "eval", "namespace": "default"},
            "spec": {
                "sources": sources,
                "language": SET_LANGUAGES.get(eval_dir, "en"),
                "chunking": {"sizeTokens": size, "overlapTokens": overlap},
                "store": {"redisUrlSecretRef": {"name": "r", "key": "url"}, "indexName": index},
            },
        }
    )


# The words --lexical-overlap leaves out of a question. English: the full-text query's own stop
# words (agent_runtime/text_languages.py). French: their French counterparts (articles, pronouns,
# question words, forms of "be", "have", "do", "can", "should", "will", "ne ... pas/plus"), elided
# forms included, so that both languages drop the same kinds of word ("avoir" and "eu" stay: in a
# question they mean "get" and "got", which the English list keeps).
_STOP_FR = """
a à ai alors as au aux avais avait avec avez avons ça ce ceci cela celle celui certaines
certains ces cet cette ceux chez combien comme comment d dans de des dire dites dois doit
doivent donc du elle elles en es est et étaient était été êtes être faire fais faisons fait
faites faut font il ils j je l la le les leur leurs lui m ma mais me mes moi mon n ne nos notre
nous on ont ou où par pas peut peuvent peux plaît plus pour pourquoi pourrais pourrait pouvez
pouvons puis qu quand que quel quelle quelles quelque quelques quels qui quoi s sa se ses si
sommes son sont suis sur t ta te tes toi ton tu un une va vais vers vont vos votre voudrais vous
y
"""
OVERLAP_STOP = {"english": QUERY_STOPWORDS["en"], "french": frozenset(_STOP_FR.split())}


def passages(eval_dir: Path, size: int, overlap: int) -> list[ChunkRecord]:
    """The set's documents cut as ingestion cuts them."""
    files = sorted((eval_dir / "docs").iterdir())
    docs = [extract(RawDocument(p.stem, p.stem, p.read_bytes())) for p in files]
    return [c for d in docs for c in chunk_document(d, ChunkingOptions(size, overlap))]


def lexical_overlap(
    eval_dir: Path, language: str, size: int = 96, overlap: int = 16
) -> list[float]:
    """Per question, the share of its words found in the passage that answers it (the answering
    passage with most of them): a question in the documents' own words scores 1, a paraphrase
    less. Words are compared as Snowball stems of ``language``; stop words and one-letter words
    do not count. The mean over a set is how much of it full-text search can match at all."""
    stemmer = snowballstemmer.stemmer(language)
    stop = OVERLAP_STOP[language]
    chunks = passages(eval_dir, size, overlap)
    shares = []
    for q in load_questions(eval_dir / "questions.yaml"):
        words = {stemmer.stemWord(w) for w in tokenise(q.q, index=True) if w not in stop}
        words -= {w for w in words if len(w) < 2}
        found = [
            len(words & {stemmer.stemWord(w) for w in tokenise(c.text, index=True)})
            for c in chunks
            if relevant(c, q)
        ]
        shares.append(max(found, default=0) / len(words) if words else 1.0)
    return shares


async def indexed(kb: KnowledgeBase, client: Any, embedder: Embedder) -> Retriever:
    """``kb`` ingested into ``client``'s Redis, and a retriever over it (exits if it fails)."""
    result = await ingest(kb, client, embedder)
    if not result.ok:
        raise SystemExit(f"ingestion failed: {result.message}")
    return Retriever(client, kb.index_name, embedder)


async def evaluate_set(
    url: str, embedder: Embedder, size: int, overlap: int, eval_dir: Path = EVAL_DIR
) -> SetResult:
    # Each set under an alias of its own ("kb-eval", "kb-eval_fr_parallel", ...).
    kb = eval_knowledge_base(size, overlap, index=f"kb-{eval_dir.name}", eval_dir=eval_dir)
    client = connect(url)
    try:
        retriever = await indexed(kb, client, embedder)
        questions = load_questions(eval_dir / "questions.yaml")
        scores = await evaluate(retriever, questions)
        unanswerable = load_unanswerable(eval_dir / "questions.yaml")
        if not unanswerable:
            return SetResult(scores, [], [])
        answerable = await nearest_similarity(retriever, [q.q for q in questions])
        return SetResult(scores, answerable, await nearest_similarity(retriever, unanswerable))
    finally:
        await client.aclose()


STRATEGIES: dict[str, tuple[KnowledgeLanguage, list[TextLanguage] | None]] = {
    "english": ("en", ["en"]),
    "detected": ("auto", None),
    "every": ("auto", ["en", "fr"]),
}
"""How a mixed knowledge base is indexed and its questions searched: ``english``, as before
languages (every document and question stemmed in English); ``detected``, kubevox's (each
document in its detected language, each question in its own: ``terms.query_languages``);
``every``, each document in its language, each question in every language, best score kept."""

FRENCH_SUFFIX = "-fr"
"""A French translation's source name in a mixed knowledge base: ``pharmacy-fr``."""


def french_sources(names: set[str] | None = None) -> list[dict[str, Any]]:
    """fr-parallel's documents (those of ``names`` if given) as sources named ``<name>-fr``."""
    return [
        {"name": p.stem + FRENCH_SUFFIX, "inline": p.read_text()}
        for p in sorted((SETS["fr-parallel"] / "docs").iterdir())
        if names is None or p.stem in names
    ]


def french_questions() -> list[Question]:
    """fr-parallel's questions, labelled with the French sources of :func:`french_sources`."""
    return [
        replace(q, source=q.source + FRENCH_SUFFIX)
        for q in load_questions(SETS["fr-parallel"] / "questions.yaml")
    ]


def mixed_knowledge_base(
    language: KnowledgeLanguage, size: int = 96, overlap: int = 16, index: str = "kb-eval-mixed"
) -> KnowledgeBase:
    """The English evaluation documents and their French translations, all in ``language``."""
    body = eval_knowledge_base(size, overlap, index).to_k8s()
    body["spec"]["sources"] += french_sources()
    body["spec"]["language"] = language
    return KnowledgeBase.model_validate(body)


async def run_mixed_eval(
    url: str, embedder: Embedder, size: int, overlap: int, strategy: str = "detected"
) -> dict[str, list[ModeScore]]:
    """Scores of the English questions (``en``) and the French ones (``fr``)."""
    language, searched = STRATEGIES[strategy]
    kb = mixed_knowledge_base(language, size, overlap)
    client = connect(url)
    try:
        retriever = await indexed(kb, client, embedder)
        english = load_questions(EVAL_DIR / "questions.yaml")
        return {
            lang: await evaluate(retriever, questions, languages=searched)
            for lang, questions in (("en", english), ("fr", french_questions()))
        }
    finally:
        await client.aclose()


async def _mixed(url: str, embedder: Embedder, size: int, overlap: int) -> None:
    for strategy in STRATEGIES:
        scores = await run_mixed_eval(url, embedder, size, overlap, strategy)
        for lang, rows in scores.items():
            print(f"\n{strategy}, {lang} questions ({rows[0].questions}):")
            print(table(rows))


async def run_eval(
    url: str, embedder: Embedder, size: int, overlap: int, eval_dir: Path = EVAL_DIR
) -> list[ModeScore]:
    return (await evaluate_set(url, embedder, size, overlap, eval_dir)).scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default="en", dest="eval_set")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--model", choices=LOCAL_EMBEDDING_MODELS, default=LOCAL_EMBEDDING_MODEL)
    ap.add_argument("--mixed", action="store_true", help="English and French documents")
    ap.add_argument(
        "--lexical-overlap",
        action="store_true",
        help="print each set's mean lexical overlap at --size/--overlap and exit (no Redis)",
    )
    args = ap.parse_args()
    if args.lexical_overlap:
        print(f"chunks of {args.size} tokens (overlap {args.overlap})")
        print("| set | questions | lexical overlap |\n|---|---|---|")
        for name, directory in SETS.items():
            shares = lexical_overlap(directory, LANGUAGES[name], args.size, args.overlap)
            print(f"| {name} | {len(shares)} | {sum(shares) / len(shares):.3f} |")
        return 0
    embedder = make_embedder(Embedding(provider="local", model=args.model))
    if args.mixed:
        print(f"chunks of {args.size} tokens (overlap {args.overlap}), {args.model}")
        if args.redis_url:
            asyncio.run(_mixed(args.redis_url, embedder, args.size, args.overlap))
        else:
            from kubevox_devenv.redis import RedisSearchServer

            with RedisSearchServer() as server:
                asyncio.run(_mixed(server.url, embedder, args.size, args.overlap))
        return 0
    eval_dir = SETS[args.eval_set]
    if args.redis_url:
        res = asyncio.run(evaluate_set(args.redis_url, embedder, args.size, args.overlap, eval_dir))
    else:
        from kubevox_devenv.redis import RedisSearchServer

        with RedisSearchServer() as server:
            res = asyncio.run(evaluate_set(server.url, embedder, args.size, args.overlap, eval_dir))
    n = res.scores[0].questions
    print(
        f"set {args.eval_set}: {n} questions, chunks of {args.size} tokens "
        f"(overlap {args.overlap}), {args.model}"
    )
    print(table(res.scores))
    if res.unanswerable_nearest:
        print("\nNearest passage's similarity (vector search):")
        print(similarity_table(res.answerable_nearest, res.unanswerable_nearest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
