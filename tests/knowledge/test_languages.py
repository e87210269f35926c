"""Knowledge bases in other languages than English, and in several: each document is indexed in
its language (declared, or detected with ``auto``), each question searched in its own, against a
real Redis with search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubevox_api.languages import TextLanguage

from agent_runtime.knowledge import LocalEmbedder, Retriever, ingest
from agent_runtime.knowledge.evaluation import load_questions, relevant
from agent_runtime.knowledge.redis_conn import command
from agent_runtime.knowledge.store import KnowledgeStore, key_prefix, meta_key
from agent_runtime.text_languages import INDEX_STOPWORDS, QUERY_STOPWORDS
from tests.support.languages import DOCUMENTS

from .helpers import bench_module, make_kb

pytestmark = pytest.mark.redis

EVAL = Path(__file__).parent / "eval"
BENCH = bench_module()
# Pages of the English evaluation set and their French translations (the parallel set's, named
# "<page>-fr"): both answer, the question's language must decide.
PAGES = {"pharmacy", "clinic-hours", "vaccinations"}
ENGLISH_FOR = {page + BENCH.FRENCH_SUFFIX: page for page in PAGES}


def _docs(folder: Path, names: set[str] | None = None, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": p.stem, "inline": p.read_text(), **extra}
        for p in sorted(folder.iterdir())
        if names is None or p.stem in names
    ]


async def _languages_of(client: aioredis.Redis, index: str, live: str) -> dict[str, str]:
    """Source → the RediSearch language its passages were indexed in."""
    version = live.rsplit("--", 1)[-1]
    out = {}
    async for key in client.scan_iter(match=f"{key_prefix(index, version)}*"):
        source, language = await client.hmget(key, ["source", "language"])
        out[source.decode()] = language.decode()
    return out


async def test_a_mixed_knowledge_base_answers_each_language_from_its_documents(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    """French and English translations of the same pages, ``auto``: a French question is
    answered from the French page, the same question in English from the English one."""
    sources = _docs(EVAL / "docs", PAGES) + BENCH.french_sources(PAGES)
    kb = make_kb(index_name, sources, language="auto")
    result = await ingest(kb, client, embedder)
    assert result.ok, result.message
    assert result.to_status()["languages"] == [
        {"language": "en", "documents": 3},
        {"language": "fr", "documents": 3},
    ]
    retriever = Retriever(client, index_name, embedder)
    french = [q for q in BENCH.french_questions() if q.source in ENGLISH_FOR]
    english = {q.source for q in load_questions(EVAL / "questions.yaml")}
    assert len(french) >= 15
    assert english >= PAGES
    in_english, answered = [], 0
    for question in french:
        top = await retriever.retrieve(question.q, top_k=3)
        if top[0].source in ENGLISH_FOR.values():
            in_english.append((question.q, top[0].source))
        # The answer, as written (typographic apostrophes and all), among the first three.
        answered += any(relevant(c, question) for c in top)
    assert in_english == []
    assert answered >= 0.9 * len(french)
    for en, fr in [
        (
            "When is the pharmacy open on Saturdays?",
            "Quand la pharmacie est-elle ouverte le samedi ?",
        ),
        ("Can I get the yellow fever vaccine?", "Puis-je avoir le vaccin contre la fièvre jaune ?"),
        ("Where can I park my car?", "Où puis-je garer ma voiture ?"),
    ]:
        top_en = await retriever.retrieve(en, top_k=1)
        top_fr = await retriever.retrieve(fr, top_k=1)
        assert ENGLISH_FOR[top_fr[0].source] == top_en[0].source, (en, top_en, fr, top_fr)


async def test_a_sources_language_overrides_the_knowledge_bases(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    sources = [
        {"name": "hours", "inline": DOCUMENTS["en"]},
        {"name": "horaires", "inline": DOCUMENTS["fr"], "language": "fr"},
    ]
    result = await ingest(make_kb(index_name, sources, language="en"), client, embedder)
    assert result.ok, result.message
    assert result.active_index
    assert await _languages_of(client, index_name, result.active_index) == {
        "hours": "english",
        "horaires": "french",
    }
    # French stems: "garez" (the question) and "garer" (the page) are both "gar".
    top = await Retriever(client, index_name, embedder).retrieve(
        "Où est-ce que je me gare ?", top_k=1, mode="text"
    )
    assert [c.source for c in top] == ["horaires"]


async def test_auto_detects_the_language_of_each_document(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    sources = [{"name": lang, "inline": text} for lang, text in DOCUMENTS.items()]
    sources.append({"name": "numbers", "inline": "8:00 - 18:30"})  # tells nothing: English
    result = await ingest(make_kb(index_name, sources, language="auto"), client, embedder)
    assert result.ok, result.message
    assert result.active_index
    names = {"en": "english", "fr": "french", "es": "spanish", "de": "german", "ar": "arabic"}
    assert await _languages_of(client, index_name, result.active_index) == {
        **{lang: names[lang] for lang in DOCUMENTS},
        "numbers": "english",
    }
    assert {row["language"]: row["documents"] for row in result.to_status()["languages"]} == {
        "en": 2,
        "fr": 1,
        "es": 1,
        "de": 1,
        "ar": 1,
    }
    # Unchanged content: the live version's languages are reported again.
    again = await ingest(make_kb(index_name, sources, language="auto"), client, embedder)
    assert not again.changed
    assert again.to_status()["languages"] == result.to_status()["languages"]


@pytest.mark.parametrize(
    ("language", "page", "other", "question"),
    [
        # The article: "the pharmacy" in the page, "a pharmacy" in the question.
        ("ar", "الصيدلية مفتوحة يوم السبت.", "قل لي أين العيادة.", "أين صيدلية؟"),
        (
            "de",
            "Die Apotheken haben samstags geöffnet.",
            "Sagen Sie, welche Praxis.",
            "Welche Apotheke?",
        ),
        ("es", "Las citas se reservan en el portal.", "Díganos cómo llegar.", "¿Cómo reservo?"),
        (
            "fr",
            "Les ordonnances sont renouvelées.",
            "Dites-nous comment venir.",
            "Comment renouveler ?",
        ),
    ],
)
async def test_full_text_finds_what_only_the_languages_analysis_finds(
    client: aioredis.Redis,
    embedder: LocalEmbedder,
    index_name: str,
    language: TextLanguage,
    page: str,
    other: str,
    question: str,
) -> None:
    """The question's word is another form of the page's, which only the language's stemmer
    conflates, and its function word is in the other page, which only its stop words drop."""
    sources = [{"name": "page", "inline": page}, {"name": "other", "inline": other}]
    found = {}
    for declared in (language, "en"):
        index = f"{index_name}-{declared}"
        kb = make_kb(index, sources, language=declared)
        assert (await ingest(kb, client, embedder)).ok
        top = await Retriever(client, index, embedder).retrieve(question, top_k=1, mode="text")
        found[declared] = [c.source for c in top]
    assert found == {language: ["page"], "en": ["other"]}


async def test_text_is_indexed_as_its_words_and_given_back_as_written(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    """RediSearch lower-cases ASCII only and splits at ASCII punctuation only (not at line
    breaks): a German noun with an umlaut opening a line, a French word after a typographic
    apostrophe, are found all the same."""
    de = "Praxis\n\nÖffnungszeiten: werktags von 8 bis 18 Uhr."
    fr = "Pièces à fournir\n\nPrésentez l\u2019ordonnance à l\u2019accueil."
    sources = [
        {"name": "de", "inline": de, "language": "de"},
        {"name": "fr", "inline": fr, "language": "fr"},
    ]
    assert (await ingest(make_kb(index_name, sources), client, embedder)).ok
    retriever = Retriever(client, index_name, embedder)
    for question, source, written in [
        ("Öffnungszeiten?", "de", "Öffnungszeiten: werktags"),
        ("Où présenter l'ordonnance ?", "fr", "Présentez l\u2019ordonnance à l\u2019accueil."),
    ]:
        top = await retriever.retrieve(question, top_k=1, mode="text")
        assert [c.source for c in top] == [source], question
        assert written in top[0].text


async def test_an_index_of_the_previous_layout_answers_in_english_until_rebuilt(
    client: aioredis.Redis, embedder: LocalEmbedder, index_name: str
) -> None:
    """An index built before languages (no languages in its metadata, no language per
    passage) keeps answering as it did; the next ingestion rebuilds it, content unchanged."""
    kb = make_kb(index_name, [{"name": "hours", "inline": DOCUMENTS["en"]}])
    first = await ingest(kb, client, embedder)
    assert first.ok, first.message
    await client.hdel(meta_key(index_name), "languages")
    await client.hset(meta_key(index_name), "content_hash", "layout-1-hash")
    live = await KnowledgeStore(client, index_name).live()
    assert live is not None
    assert live.languages == {}
    old = Retriever(client, index_name, embedder)
    top = await old.retrieve("Is parking free?", top_k=1, mode="text")
    assert [c.source for c in top] == ["hours"]
    assert old._languages == ["en"]
    rebuilt = await ingest(kb, client, embedder)
    assert rebuilt.changed, rebuilt.message
    assert rebuilt.to_status()["languages"] == [{"language": "en", "documents": 1}]


async def test_no_query_holds_a_word_redisearch_leaves_out(
    client: aioredis.Redis, index_name: str
) -> None:
    """INDEX_STOPWORDS are RediSearch's own (a union holding two of them crashes it, see
    agent_runtime/text_languages.py): every language's query stop words include them."""
    candidates = sorted(INDEX_STOPWORDS | QUERY_STOPWORDS["en"] | {"clinic", "open"})
    await command(client, "FT.CREATE", index_name, "ON", "HASH", "PREFIX", "1", f"{index_name}:",
                  "SCHEMA", "text", "TEXT")  # fmt: skip
    try:
        for i, word in enumerate(candidates):
            await client.hset(f"{index_name}:{i}", mapping={"text": f"x{i} {word}"})
        left_out = set()
        for word in candidates:
            reply = await command(client, "FT.SEARCH", index_name, f"@text:({word})",
                                  "NOCONTENT", "VERBATIM", "DIALECT", "2")  # fmt: skip
            if reply[0] == 0:
                left_out.add(word)
        assert left_out == INDEX_STOPWORDS
        assert all(words >= INDEX_STOPWORDS for words in QUERY_STOPWORDS.values())
    finally:
        await command(client, "FT.DROPINDEX", index_name, "DD")
