"""Indexing into an embedded Qdrant: idempotent, resumable, model-checked, readable by qdrant-haystack."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from mpretriever.data import BeirDataset
from mpretriever.index import (
    CollectionMismatchError,
    QdrantSettings,
    QdrantUnavailableError,
    collection_manifest,
    ensure_collection,
    index_corpus,
    point_id,
    read_manifest,
)
from mpretriever.model import BiEncoder


@pytest.fixture
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_model_dir, normalize=True)


@pytest.fixture
def client(tmp_path: Path):
    client = QdrantSettings(path=str(tmp_path / "qdrant")).connect()
    yield client
    client.close()


def _index(encoder, corpus, client, **options):
    ensure_collection(client, "docs", collection_manifest(encoder, "tiny"))
    return index_corpus(encoder, corpus, client, "docs", show_progress=False, **options)


def test_index_stores_payload_vectors_and_manifest(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    stats = _index(encoder, corpus, client, batch_size=7)
    assert (stats.written, stats.already_present, stats.points_in_collection) == (60, 0, 60)
    record = client.retrieve("docs", ids=[point_id("d0-1")], with_vectors=True)[0]
    assert record.payload["id"] == "d0-1" and record.payload["meta"]["title"]
    expected = encoder.embed_texts([f"{corpus[1]['title']} {corpus[1]['text']}"], "passage")[0]
    torch.testing.assert_close(torch.tensor(record.vector), expected, atol=1e-5, rtol=1e-4)
    manifest = read_manifest(client, "docs")
    assert manifest["fingerprint"] == encoder.fingerprint() and manifest["dimension"] == 32


def test_reindex_leaves_the_count_unchanged(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    _index(encoder, corpus, client)
    again = _index(encoder, corpus, client)
    assert (again.written, again.already_present, again.points_in_collection) == (0, 60, 60)


def test_interrupted_run_resumes_with_exact_count(encoder, client, tiny_beir: Path, monkeypatch) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    ensure_collection(client, "docs", collection_manifest(encoder, "tiny"))
    real_upsert = client.upsert
    calls = {"n": 0}

    def failing_upsert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("simulated crash")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(client, "upsert", failing_upsert)
    with pytest.raises(ConnectionError):
        index_corpus(encoder, corpus, client, "docs", chunk_size=16, show_progress=False)
    monkeypatch.setattr(client, "upsert", real_upsert)
    before = client.count("docs", exact=True).count
    assert before == 32, "the two chunks upserted before the crash are kept"

    encoded: list[int] = []
    real_encode = encoder.model.encode_document

    def counting_encode(texts, **kwargs):
        encoded.append(len(texts))
        return real_encode(texts, **kwargs)

    monkeypatch.setattr(encoder.model, "encode_document", counting_encode)
    stats = index_corpus(encoder, corpus, client, "docs", chunk_size=16, show_progress=False)
    assert stats.points_in_collection == 60 and stats.written == 28 and stats.already_present == 32
    assert sum(encoded) == 28, "only the missing documents are encoded again"
    ids = [str(point.id) for point in client.scroll("docs", limit=1000)[0]]
    assert len(ids) == len(set(ids)) == 60


def test_other_model_or_dimension_is_refused_unless_recreate(encoder, client, tiny_beir, tiny_model_dir) -> None:
    _index(encoder, BeirDataset(tiny_beir).corpus, client)
    other = BiEncoder.from_pretrained(tiny_model_dir, pooling="cls", normalize=True)
    other_manifest = collection_manifest(other, "other")
    with pytest.raises(CollectionMismatchError, match="was indexed with model tiny"):
        ensure_collection(client, "docs", other_manifest)
    with pytest.raises(CollectionMismatchError, match="holds 32-d vectors but the model big gives 384-d"):
        ensure_collection(client, "docs", {**other_manifest, "model": "big", "dimension": 384})
    assert ensure_collection(client, "docs", other_manifest, recreate=True) is True
    assert client.count("docs").count == 0
    assert read_manifest(client, "docs")["model"] == "other"


def test_qdrant_haystack_reads_an_mpr_collection(encoder, tiny_beir: Path, tmp_path: Path) -> None:
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    path = str(tmp_path / "qdrant")
    client = QdrantSettings(path=path).connect()
    _index(encoder, BeirDataset(tiny_beir).corpus, client)
    query = encoder.embed_texts(["cancer cell diet"], "query")[0]
    ours = client.query_points("docs", query=query.tolist(), limit=5).points
    client.close()

    store = QdrantDocumentStore(path=path, index="docs", embedding_dim=32, similarity="cosine")
    documents = QdrantEmbeddingRetriever(store, top_k=5).run(query_embedding=query.tolist())["documents"]
    assert store.count_documents() == 60
    assert [point_id(d.id) for d in documents] == [str(p.id).replace("-", "") for p in ours]
    assert [d.score for d in documents] == pytest.approx([p.score for p in ours])
    assert all(d.content for d in documents)
    store.close()


def test_unreachable_server_fails_fast_with_a_clear_message() -> None:
    started = time.monotonic()
    with pytest.raises(QdrantUnavailableError, match=r"cannot reach Qdrant at http://127.0.0.1:1"):
        QdrantSettings(url="http://127.0.0.1:1", timeout=2).connect()
    assert time.monotonic() - started < 5


def test_a_locked_local_directory_is_a_clear_error(client, tmp_path: Path) -> None:
    with pytest.raises(QdrantUnavailableError, match="cannot open local Qdrant"):
        QdrantSettings(path=str(tmp_path / "qdrant")).connect()


def test_multi_process_encoding_gives_the_same_vectors(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus.select(range(20))
    stats = _index(encoder, corpus, client, workers=2, chunk_size=8)
    assert stats.points_in_collection == 20
    records = client.retrieve("docs", ids=[point_id(doc_id) for doc_id in corpus["_id"]], with_vectors=True)
    vectors = {record.payload["id"]: record.vector for record in records}
    texts = [f"{row['title']} {row['text']}".strip() for row in corpus]
    expected = encoder.embed_texts(texts, "passage")
    actual = torch.tensor([vectors[doc_id] for doc_id in corpus["_id"]])
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)
