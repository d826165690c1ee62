"""Indexing into an embedded Qdrant: idempotent, resumable, model-checked, readable by qdrant-haystack."""

from __future__ import annotations

import time
from pathlib import Path

import datasets
import pytest
import torch

from mpretriever.data import BeirDataset
from mpretriever.haystack import MPRetriever
from mpretriever.index import (
    CollectionMismatchError,
    QdrantSettings,
    QdrantUnavailableError,
    check_compatible,
    collection_manifest,
    ensure_collection,
    index_corpus,
    index_dataset,
    point_id,
    read_manifest,
    recorded_corpora,
)
from mpretriever.index.collection import FINGERPRINT_FIELD
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
            raise RuntimeError("simulated crash")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(client, "upsert", failing_upsert)
    with pytest.raises(RuntimeError, match="simulated crash"):
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


def test_qdrant_haystack_reads_an_mpr_collection(
    encoder, tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
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
    assert all(FINGERPRINT_FIELD in d.meta for d in documents), "qdrant-haystack reads the fingerprint as meta"
    store.close()

    retriever = MPRetriever(collection="docs", model=str(tiny_model_dir), qdrant_path=path, top_k=5, check_model=False)
    ours = retriever.run(query="cancer cell diet")["documents"]
    retriever.close()
    assert ours and not any(FINGERPRINT_FIELD in d.meta for d in ours), "the indexer's own field stays out of meta"


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


def _edited(corpus: datasets.Dataset, changed: dict[str, str]) -> datasets.Dataset:
    return corpus.map(lambda row: {"text": changed.get(row["_id"], row["text"])})


def test_changed_texts_are_embedded_again(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    _index(encoder, corpus, client)
    changed = {"d0-1": "coffee and sleep", "n3": "milk egg fish"}
    stats = _index(encoder, _edited(corpus, changed), client)
    assert (stats.written, stats.updated, stats.already_present, stats.points_in_collection) == (2, 2, 58, 60)
    record = client.retrieve("docs", ids=[point_id("d0-1")], with_vectors=True, with_payload=True)[0]
    assert record.payload["content"] == "coffee and sleep"
    expected = encoder.embed_texts([f"{corpus[1]['title']} coffee and sleep"], "passage")[0]
    torch.testing.assert_close(torch.tensor(record.vector), expected, atol=1e-5, rtol=1e-4)
    assert _index(encoder, _edited(corpus, changed), client).written == 0


def test_points_without_a_fingerprint_are_embedded_again(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    _index(encoder, corpus, client)
    older = [point_id(doc_id) for doc_id in ("d1-0", "n5")]
    client.delete_payload("docs", keys=[FINGERPRINT_FIELD], points=older)  # as written before fingerprints
    stats = _index(encoder, corpus, client)
    assert (stats.written, stats.updated, stats.already_present) == (2, 2, 58)
    records = client.retrieve("docs", ids=older, with_payload=[FINGERPRINT_FIELD])
    assert all(record.payload.get(FINGERPRINT_FIELD) for record in records)


def test_removed_documents_are_counted_and_deleted_with_sync(encoder, client, tiny_beir: Path) -> None:
    corpus = BeirDataset(tiny_beir).corpus
    _index(encoder, corpus, client)
    kept = corpus.select(range(50))
    stats = _index(encoder, kept, client)
    assert (stats.written, stats.stale, stats.deleted, stats.points_in_collection) == (0, 10, 0, 60)
    stats = _index(encoder, kept, client, sync=True)
    assert (stats.written, stats.stale, stats.deleted, stats.points_in_collection) == (0, 0, 10, 50)
    removed = [point_id(doc_id) for doc_id in corpus.select(range(50, 60))["_id"]]
    assert client.retrieve("docs", ids=removed) == []


def test_another_backend_is_refused_for_writing_but_not_for_searching(encoder, client, tiny_beir: Path) -> None:
    _index(encoder, BeirDataset(tiny_beir).corpus, client)
    int8 = {**collection_manifest(encoder, "tiny"), "backend": "onnx-int8"}
    with pytest.raises(CollectionMismatchError, match="encoded with the torch backend, not onnx-int8"):
        ensure_collection(client, "docs", int8)
    check_compatible(client, "docs", int8)  # searching with another backend is fine
    assert ensure_collection(client, "docs", int8, recreate=True) is True
    assert read_manifest(client, "docs")["backend"] == "onnx-int8"


def test_another_corpus_is_refused_unless_allowed(encoder, client) -> None:
    manifest = collection_manifest(encoder, "tiny")
    ensure_collection(client, "docs", manifest, corpus="nfcorpus")
    with pytest.raises(CollectionMismatchError, match=r"holds corpus nfcorpus, not scifact.*--allow-other-corpus"):
        ensure_collection(client, "docs", manifest, corpus="scifact")
    ensure_collection(client, "docs", manifest, corpus="nfcorpus")  # the same corpus again
    ensure_collection(client, "docs", manifest, corpus="scifact", allow_other_corpus=True)
    assert recorded_corpora(client, "docs") == ["nfcorpus", "scifact"]
    ensure_collection(client, "docs", manifest, corpus="scifact")  # merged once: accepted from now on
    assert ensure_collection(client, "docs", manifest, recreate=True, corpus="cranfield") is True
    assert recorded_corpora(client, "docs") == ["cranfield"]


def test_sync_is_refused_where_another_corpus_was_merged_in(encoder, tiny_beir: Path, tmp_path: Path) -> None:
    settings = QdrantSettings(path=str(tmp_path / "qdrant"))
    corpus = BeirDataset(tiny_beir).corpus
    index_dataset(encoder, corpus.select(range(30)), "first", settings, "docs", "tiny", show_progress=False)
    merged = index_dataset(
        encoder,
        corpus.select(range(30, 60)),
        "second",
        settings,
        "docs",
        "tiny",
        allow_other_corpus=True,
        show_progress=False,
    )
    assert merged.stats.points_in_collection == 60 and merged.stats.stale == 30
    assert "30 points are not in this corpus" in merged.summary() and "--sync deletes them" in merged.summary()
    with pytest.raises(CollectionMismatchError, match="also holds corpus first: --sync would delete its points"):
        index_dataset(encoder, corpus.select(range(30, 60)), "second", settings, "docs", "tiny", sync=True)


def test_vectors_come_from_the_embedding_cache_when_it_holds_the_corpus(
    encoder, client, tiny_beir: Path, tmp_path: Path
) -> None:
    """A cache holding this corpus under this encoder (as a dev evaluation stores it) is read row by row for the
    passages the collection lacks; another corpus, or no cache, is encoded."""
    from mpretriever.search.embeddings import EmbeddingCache

    corpus = BeirDataset(tiny_beir).corpus
    _index(encoder, corpus.select(range(20)), client)  # an interrupted run: the first 20 are there
    cache = EmbeddingCache(tmp_path / "cache")
    description = EmbeddingCache.describe(encoder, corpus)
    stored = torch.nn.functional.normalize(torch.randn(len(corpus), encoder.dimension), dim=-1)
    cache.save(EmbeddingCache.key(description), stored, description)

    stats = _index(encoder, corpus, client, cache=cache)
    assert stats.from_cache and (stats.written, stats.already_present) == (40, 20)
    assert cache.hits == 1
    records = client.retrieve("docs", ids=[point_id(doc_id) for doc_id in corpus["_id"]], with_vectors=True)
    vectors = {record.payload["id"]: torch.tensor(record.vector) for record in records}
    for row, doc_id in enumerate(corpus["_id"]):
        if row >= 20:  # read from the cache, in corpus order
            torch.testing.assert_close(vectors[doc_id], stored[row])
        else:  # encoded by the first run, left alone
            assert not torch.allclose(vectors[doc_id], stored[row])

    other = corpus.select(range(10, 30))  # another corpus: not in the cache
    client.delete_collection("docs")
    stats = _index(encoder, other, client, cache=cache)
    assert not stats.from_cache and stats.written == 20 and cache.misses == 1
