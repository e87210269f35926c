"""The multilingual local model (Universal Sentence Encoder multilingual v3): unit vectors of
512 dimensions, French paraphrases closer than unrelated sentences, English and French in one
vector space, and end-to-end retrieval of French passages."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pytest
import redis.asyncio as aioredis
from kubevox_api import ResolvedKnowledgeBase
from kubevox_api.knowledgebase import (
    LOCAL_EMBEDDING_MODEL,
    LOCAL_MULTILINGUAL_EMBEDDING_MODEL,
    LOCAL_STATIC_EMBEDDING_MODEL,
    Embedding,
)

from agent_runtime.knowledge import MultilingualEmbedder, Retriever, ingest, make_embedder, runtime

from .helpers import make_kb

# (question, a passage that answers it in other words, an unrelated passage)
FRENCH = [
    ("À quelle heure ouvre la pharmacie le samedi ?",
     "Le samedi, l'officine accueille les clients de 9 h à midi.",
     "Le parking souterrain est gratuit pendant deux heures."),
    ("Où est-ce que je peux garer ma voiture ?",
     "Les visiteurs stationnent gratuitement dans le parking souterrain.",
     "Les vaccins contre la grippe sont proposés chaque automne."),
    ("Je voudrais annuler mon rendez-vous de demain.",
     "Pour décommander une consultation, prévenez-nous au moins 24 heures avant.",
     "Le petit-déjeuner est servi de 7 h à 10 h dans le jardin d'hiver."),
    ("Comment payer ma facture ?",
     "Les factures se règlent par virement bancaire ou par carte à l'accueil.",
     "La médiathèque prête dix livres pour trois semaines."),
]  # fmt: skip

# (English sentence, its French translation, an unrelated French sentence)
CROSS_LINGUAL = [
    ("When does the pharmacy open on Saturday?",
     "Quand la pharmacie ouvre-t-elle le samedi ?",
     "Les poubelles sont ramassées le mardi matin."),
    ("The clinic is closed on Sundays and public holidays.",
     "La clinique est fermée le dimanche et les jours fériés.",
     "Un menu végétarien est servi chaque lundi à la cantine."),
]  # fmt: skip


def test_unit_vectors_of_512_dimensions(multilingual_embedder: MultilingualEmbedder) -> None:
    texts = ["Bonjour.", "", "☃☃", "La mairie est ouverte du lundi au vendredi. " * 100, "فتح"]
    batch = multilingual_embedder.encode(texts)
    assert multilingual_embedder.dimensions == 512
    assert batch.shape == (len(texts), 512)
    assert batch.dtype == np.float32
    assert np.isfinite(batch).all()
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert multilingual_embedder.encode([]).shape == (0, 512)
    # Texts are encoded independently of their batch.
    one_by_one = np.vstack([multilingual_embedder.encode([t]) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-5)


@pytest.mark.parametrize(("question", "related", "unrelated"), FRENCH)
def test_french_paraphrase_is_closer_than_an_unrelated_sentence(
    multilingual_embedder: MultilingualEmbedder, question: str, related: str, unrelated: str
) -> None:
    q, r, u = multilingual_embedder.encode([question, related, unrelated])
    assert float(q @ r) > float(q @ u) + 0.1, (float(q @ r), float(q @ u))


@pytest.mark.parametrize(("english", "french", "unrelated"), CROSS_LINGUAL)
def test_english_and_french_share_one_vector_space(
    multilingual_embedder: MultilingualEmbedder, english: str, french: str, unrelated: str
) -> None:
    e, f, u = multilingual_embedder.encode([english, french, unrelated])
    assert float(e @ f) > 0.7, float(e @ f)
    assert float(e @ f) > float(e @ u) + 0.3, (float(e @ f), float(e @ u))


async def test_query_vector_matches_document_vector_and_is_cached(
    multilingual_embedder: MultilingualEmbedder,
) -> None:
    text = "Où puis-je recharger ma voiture électrique ?"
    doc = await multilingual_embedder.embed_documents([text])
    first = await multilingual_embedder.embed_query(text)
    assert np.allclose(first, doc[0], atol=1e-6)
    assert await multilingual_embedder.embed_query(text) is first


def test_local_model_names_pick_their_embedders() -> None:
    embedders = {
        model: make_embedder(Embedding(provider="local", model=model))
        for model in (LOCAL_EMBEDDING_MODEL, LOCAL_STATIC_EMBEDDING_MODEL,
                      LOCAL_MULTILINGUAL_EMBEDDING_MODEL)
    }  # fmt: skip
    multilingual = embedders[LOCAL_MULTILINGUAL_EMBEDDING_MODEL]
    assert isinstance(multilingual, MultilingualEmbedder)
    assert not isinstance(embedders[LOCAL_EMBEDDING_MODEL], MultilingualEmbedder)
    # Its own vector space, named with the package's version (a new release re-indexes).
    assert multilingual.model_id == (
        f"local/{LOCAL_MULTILINGUAL_EMBEDDING_MODEL}-3/"
        f"{importlib.metadata.version(MultilingualEmbedder.PACKAGE)}"
    )
    assert len({e.model_id for e in embedders.values()}) == 3


def test_worker_prewarm_loads_it_once() -> None:
    """The worker's prewarm loads the model before the first call (about 3 s, over the turn's
    one-second retrieval budget), once per process for every knowledge base using it."""
    kbs = [
        ResolvedKnowledgeBase(
            name=f"kb{i}", index_name=f"kb{i}", top_k=4, min_score=0.0,
            embedding=Embedding(provider="local", model=LOCAL_MULTILINGUAL_EMBEDDING_MODEL),
            redis_url_env="KUBEVOX_KB_0_REDIS_URL",
        )
        for i in range(2)
    ]  # fmt: skip
    runtime.prewarm_embedders(kbs, {})
    first, second = (runtime._embedder(kb, {}) for kb in kbs)
    assert first is second
    assert isinstance(first, MultilingualEmbedder)
    assert first._model is not None


def test_blas_threads_are_limited() -> None:
    """The package keeps numpy's BLAS on the embedder's threads through threadpoolctl, and
    silently uses every core without it (slower, and several times the CPU, on 2 cores)."""
    assert importlib.util.find_spec("threadpoolctl") is not None


TOWN = [
    {"name": "dechets", "inline": "# Déchets\n\nLes ordures ménagères sont collectées le mardi "
     "matin. Le verre se dépose dans les colonnes du parking du supermarché."},
    {"name": "piscine", "inline": "# Piscine\n\nLa piscine municipale est ouverte le week-end de "
     "9 h à 13 h. Le bonnet de bain est obligatoire."},
    {"name": "etat-civil", "inline": "# Papiers\n\nLes passeports et les cartes d'identité se "
     "demandent uniquement sur rendez-vous, avec une pré-demande en ligne."},
]  # fmt: skip


@pytest.mark.redis
async def test_french_passages_answer_french_and_english_questions(
    client: aioredis.Redis, multilingual_embedder: MultilingualEmbedder, index_name: str
) -> None:
    kb = make_kb(index_name, TOWN, embedding={"model": LOCAL_MULTILINGUAL_EMBEDDING_MODEL})
    assert (await ingest(kb, client, multilingual_embedder)).ok
    retriever = Retriever(client, index_name, multilingual_embedder)
    for question, source in {
        "Quel jour passe le camion poubelle ?": "dechets",
        "Faut-il un bonnet pour nager ?": "piscine",
        "How do I renew my passport?": "etat-civil",
        "When can I go swimming on Sunday?": "piscine",
    }.items():
        chunks = await retriever.retrieve(question, top_k=1, mode="vector")
        assert chunks[0].source == source, (question, chunks[0].source)
