"""Dense mining: exact chunked search with torch, and the same ranking through a Qdrant collection."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpretriever.data import BeirDataset, passage_text
from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus
from mpretriever.mining.base import Miner, MiningQuery
from mpretriever.mining.dense import DenseMiner, QdrantMiner
from mpretriever.mining.run import mine_queries
from mpretriever.mining.selection import SelectionConfig, mining_queries
from mpretriever.model import BiEncoder


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_model_dir, normalize=True)


@pytest.fixture(scope="module")
def dataset(tiny_beir: Path) -> BeirDataset:
    return BeirDataset(tiny_beir)


@pytest.fixture(scope="module")
def exact(encoder: BiEncoder, dataset: BeirDataset) -> DenseMiner:
    return DenseMiner.from_corpus(encoder, dataset.corpus, batch_size=16, workers=1)


def test_exact_search_matches_brute_force_and_skips_excluded(
    encoder: BiEncoder, dataset: BeirDataset, exact: DenseMiner
) -> None:
    assert isinstance(exact, Miner)
    queries = mining_queries(dataset.queries, dataset.qrels("train"))
    corpus = dataset.corpus
    passages = encoder.model.encode_document(
        [passage_text(t, x) for t, x in zip(corpus["title"], corpus["text"], strict=True)], convert_to_tensor=True
    )
    chunked = DenseMiner(encoder, corpus["_id"], passages, score_chunk=7)  # 60 documents in 9 chunks
    for query, ranking, chunked_ranking in zip(
        queries, exact.rank(queries, depth=20), chunked.rank(queries, depth=20), strict=True
    ):
        vector = encoder.model.encode_query([query.text], convert_to_tensor=True)
        scores = encoder.similarity(vector, passages)[0]
        expected = [
            (doc_id, score)
            for doc_id, score in sorted(zip(corpus["_id"], scores.tolist(), strict=True), key=lambda p: -p[1])
            if doc_id not in query.excluded
        ][:20]
        assert [c.doc_id for c in ranking.candidates] == [doc_id for doc_id, _ in expected]
        assert [c.score for c in ranking.candidates] == pytest.approx([s for _, s in expected], abs=1e-5)
        assert [c.doc_id for c in chunked_ranking.candidates] == [c.doc_id for c in ranking.candidates]
        assert not {c.doc_id for c in ranking.candidates} & query.excluded
        positive_rows = [dataset.doc_index[d] for d in query.positives]
        assert ranking.positive_scores == pytest.approx(scores[positive_rows].tolist(), abs=1e-5)


def test_dense_mining_with_a_margin_keeps_negatives_below_the_weakest_positive(
    dataset: BeirDataset, exact: DenseMiner
) -> None:
    queries = mining_queries(dataset.queries, dataset.qrels("train"))
    rankings = {r.query_id: r for r in exact.rank(queries, depth=50)}
    selection = SelectionConfig(depth=50, max_negatives=50, absolute_margin=0.0)
    mined, stats = mine_queries(exact, queries, selection, dataset.doc_index, batch_size=5)
    assert stats.queries == 12 and stats.negatives > 0
    for query, result in zip(queries, mined, strict=True):
        weakest = min(rankings[query.query_id].positive_scores)
        assert all(c.score <= weakest for c in result.negatives)
        assert not {c.doc_id for c in result.negatives} & set(query.positives)
    assert stats.dropped_by_margin == sum(
        sum(c.score > min(rankings[q.query_id].positive_scores) for c in rankings[q.query_id].candidates)
        for q in queries
    )


def test_qdrant_collection_gives_the_exact_ranking(encoder: BiEncoder, dataset: BeirDataset, exact: DenseMiner) -> None:
    client = QdrantSettings(path=":memory:").connect()
    try:
        ensure_collection(client, "tiny", collection_manifest(encoder, "tiny"))
        index_corpus(encoder, dataset.corpus, client, "tiny", show_progress=False)
        miner = QdrantMiner(client, "tiny", encoder)
        queries = mining_queries(dataset.queries, dataset.qrels("train"))
        for through_qdrant, in_memory in zip(miner.rank(queries, 15), exact.rank(queries, 15), strict=True):
            assert len(through_qdrant.candidates) == 15
            assert [c.score for c in through_qdrant.candidates] == pytest.approx(
                [c.score for c in in_memory.candidates], abs=1e-4
            )
            for ours, theirs in zip(through_qdrant.candidates, in_memory.candidates, strict=True):
                assert ours.doc_id == theirs.doc_id or abs(ours.score - theirs.score) < 1e-4  # ties may swap
            assert sorted(through_qdrant.positive_scores) == pytest.approx(sorted(in_memory.positive_scores), abs=1e-4)
            query = next(q for q in queries if q.query_id == through_qdrant.query_id)
            assert not {c.doc_id for c in through_qdrant.candidates} & query.excluded
        unlabelled = MiningQuery("free", "cancer diet", positives=(), excluded=frozenset())
        (ranking,) = miner.rank([unlabelled], 3)
        assert len(ranking.candidates) == 3 and ranking.positive_scores == ()
    finally:
        client.close()


def test_embeddings_must_match_the_ids(encoder: BiEncoder) -> None:
    with pytest.raises(ValueError, match="3 document ids but 2 embeddings"):
        DenseMiner(encoder, ["a", "b", "c"], torch.zeros(2, 32))


def test_dot_product_on_unnormalised_embeddings(tiny_model_dir: Path, dataset: BeirDataset) -> None:
    encoder = BiEncoder.from_pretrained(tiny_model_dir, normalize=False, similarity="dot")
    passages = torch.randn(len(dataset.corpus), 32) * torch.linspace(0.5, 3.0, len(dataset.corpus))[:, None]
    miner = DenseMiner(encoder, dataset.corpus["_id"], passages, score_chunk=16)
    (query,) = mining_queries(dataset.queries, dataset.qrels("train"))[:1]
    (ranking,) = miner.rank([query], depth=5)
    vector = encoder.model.encode_query([query.text], convert_to_tensor=True)[0]
    scores = passages @ vector
    order = [dataset.corpus["_id"][row] for row in scores.argsort(descending=True).tolist()]
    assert [c.doc_id for c in ranking.candidates] == [d for d in order if d not in query.excluded][:5]
    row = dataset.doc_index
    assert [c.score for c in ranking.candidates] == pytest.approx(
        [scores[row[c.doc_id]].item() for c in ranking.candidates], rel=1e-5
    )
