"""Exact search equals brute force; corpus embeddings are cached per model, backend, length and corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpretriever.data import BeirDataset, passage_text
from mpretriever.model import BiEncoder
from mpretriever.search import embeddings as embeddings_module
from mpretriever.search.embeddings import EmbeddingCache, corpus_digest
from mpretriever.search.exact import ExactIndex


@pytest.fixture(scope="module")
def encoder(tiny_run: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_run)


@pytest.fixture(scope="module")
def dataset(tiny_beir: Path) -> BeirDataset:
    return BeirDataset(tiny_beir)


def _brute_force(encoder: BiEncoder, dataset: BeirDataset, queries: list[str]) -> list[list[tuple[str, float]]]:
    corpus = dataset.corpus
    passages = encoder.model.encode_document(
        [passage_text(t, x) for t, x in zip(corpus["title"], corpus["text"], strict=True)], convert_to_tensor=True
    )
    vectors = encoder.model.encode_query(queries, convert_to_tensor=True)
    return [
        sorted(zip(corpus["_id"], scores, strict=True), key=lambda pair: -pair[1])
        for scores in encoder.similarity(vectors, passages).tolist()
    ]


def test_exact_search_equals_brute_force(encoder: BiEncoder, dataset: BeirDataset) -> None:
    index = ExactIndex.from_corpus(encoder, dataset.corpus, batch_size=16, workers=1)
    chunked = ExactIndex(encoder, index.doc_ids, index.embeddings, score_chunk=7)  # 60 documents in 9 chunks
    texts = [dataset.queries[q] for q in sorted(dataset.queries)]
    results, chunked_results = index.search(texts, k=10), chunked.search(texts, k=10)
    for hits, chunked_hits, ranking in zip(
        results, chunked_results, _brute_force(encoder, dataset, texts), strict=True
    ):
        expected = ranking[:10]
        assert [h.doc_id for h in hits] == [doc_id for doc_id, _ in expected]
        assert [h.score for h in hits] == pytest.approx([score for _, score in expected], abs=1e-5)
        assert [h.doc_id for h in chunked_hits] == [h.doc_id for h in hits]
    assert len(index.search(texts[:1], k=500)[0]) == len(dataset.corpus)


def test_excluded_documents_are_never_returned(encoder: BiEncoder, dataset: BeirDataset) -> None:
    index = ExactIndex.from_corpus(encoder, dataset.corpus, workers=1)
    text = dataset.queries["q0"]
    best = [h.doc_id for h in index.search([text], k=5)[0]]
    hits = index.search([text], k=5, excluded=[set(best[:2]) | {"not-a-document"}])[0]
    assert [h.doc_id for h in hits][:3] == best[2:]
    assert not {h.doc_id for h in hits} & set(best[:2])
    with pytest.raises(ValueError, match="1 queries but 2 excluded sets"):
        index.search([text], k=5, excluded=[set(), set()])


def test_dot_similarity_keeps_the_norms(tiny_model_dir: Path, dataset: BeirDataset) -> None:
    encoder = BiEncoder.from_pretrained(tiny_model_dir, normalize=False, similarity="dot")
    passages = torch.randn(len(dataset.corpus), 32) * torch.linspace(0.5, 3.0, len(dataset.corpus))[:, None]
    index = ExactIndex(encoder, dataset.corpus["_id"], passages, score_chunk=16)
    vector = index.embed_queries([dataset.queries["q3"]])
    (hits,) = index.search_embeddings(vector, k=5)
    scores = passages @ vector[0]
    ids = list(dataset.corpus["_id"])
    assert [h.doc_id for h in hits] == [ids[row] for row in scores.argsort(descending=True)[:5].tolist()]


def test_second_encoding_of_a_corpus_comes_from_the_cache(
    encoder: BiEncoder, dataset: BeirDataset, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings")
    first = ExactIndex.from_corpus(encoder, dataset.corpus, workers=1, cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 1
    assert not list((tmp_path / "embeddings").glob(".*tmp"))  # written atomically, nothing left behind

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the corpus was encoded again")

    monkeypatch.setattr(embeddings_module, "encode_corpus", no_encoding)
    progress: list[int] = []
    second = ExactIndex.from_corpus(encoder, dataset.corpus, workers=1, cache=cache, on_progress=progress.append)
    assert cache.hits == 1 and progress == [len(dataset.corpus)]
    assert torch.equal(second.embeddings, first.embeddings)

    shorter = BiEncoder.from_pretrained(tiny_run, passage_max_length=16)
    with pytest.raises(AssertionError, match="encoded again"):  # another passage length: another key
        ExactIndex.from_corpus(shorter, dataset.corpus, workers=1, cache=cache)
    with pytest.raises(AssertionError, match="encoded again"):  # another corpus: another key
        ExactIndex.from_corpus(encoder, dataset.corpus.select(range(10)), workers=1, cache=cache)


def test_cache_key_follows_model_backend_and_corpus(encoder: BiEncoder, dataset: BeirDataset) -> None:
    description = EmbeddingCache.describe(encoder, dataset.corpus)
    assert description["model_fingerprint"] == encoder.fingerprint()
    assert description["backend"] == "torch" and description["passage_max_length"] == 128
    key = EmbeddingCache.key(description)
    assert EmbeddingCache.key({**description, "backend": "onnx-int8"}) != key
    assert corpus_digest(dataset.corpus) == corpus_digest(BeirDataset(dataset.root).corpus)
    renamed = dataset.corpus.map(lambda row: {"text": row["text"] + "!" if row["_id"] == "n3" else row["text"]})
    assert corpus_digest(renamed) != corpus_digest(dataset.corpus)


def test_unreadable_cache_files_are_ignored(encoder: BiEncoder, dataset: BeirDataset, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = EmbeddingCache.key(EmbeddingCache.describe(encoder, dataset.corpus))
    cache.path(key).write_bytes(b"not a matrix")
    assert cache.load(key, len(dataset.corpus)) is None
    cache.save(key, torch.zeros(3, 32), {})
    assert cache.load(key, len(dataset.corpus)) is None  # wrong number of rows
    assert cache.misses == 2 and cache.hits == 0
