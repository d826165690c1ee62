"""BM25 mining with bm25s: lexical candidates, best first, labelled documents never returned."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest

from mpretriever.data import BeirDataset, passage_text
from mpretriever.mining.base import MiningQuery
from mpretriever.mining.bm25 import STOPWORDS, BM25Miner
from mpretriever.mining.run import mine_queries
from mpretriever.mining.selection import SelectionConfig, mining_queries


def _miner(dataset: BeirDataset) -> BM25Miner:
    corpus = dataset.corpus
    texts = [passage_text(t, x) for t, x in zip(corpus["title"], corpus["text"], strict=True)]
    return BM25Miner.from_texts(corpus["_id"], texts, stemmer=None)


def _terms(text: str) -> set[str]:
    return set(bm25s.tokenize([text], stopwords=STOPWORDS, return_ids=False, show_progress=False)[0])


def test_toy_corpus_ranks_by_term_overlap() -> None:
    miner = BM25Miner.from_texts(
        ["cat", "dog", "both", "none"],
        ["the cat sat on the mat", "a dog in the park", "a cat and a dog", "statins lower cholesterol"],
        stemmer=None,
    )
    scores = miner.scores("cat dog")
    assert scores[2] == scores.max() and scores[3] == 0.0
    assert np.all(miner.scores("the of and") == 0.0)  # stop words only: no candidate
    query = MiningQuery("q", "cat dog", positives=("both",), excluded=frozenset({"both"}))
    (ranking,) = miner.rank([query], depth=10)
    assert [c.doc_id for c in ranking.candidates] in (["cat", "dog"], ["dog", "cat"])  # "none" shares no term
    assert ranking.positive_scores == pytest.approx((float(scores[2]),))


def test_bm25_negatives_on_nfcorpus_are_lexical_and_never_positives(nfcorpus_sample: Path) -> None:
    dataset = BeirDataset(nfcorpus_sample)
    qrels = dataset.qrels("train")
    queries = mining_queries(dataset.queries, qrels)
    miner = _miner(dataset)
    corpus_text = {
        doc_id: passage_text(t, x)
        for doc_id, t, x in zip(dataset.corpus["_id"], dataset.corpus["title"], dataset.corpus["text"], strict=True)
    }
    mined, stats = mine_queries(miner, queries, SelectionConfig(depth=20, max_negatives=5), dataset.doc_index)
    assert stats.queries == len(queries) == 24
    assert stats.with_negatives >= 12 and stats.most == 5  # rare one-word queries (e.g. "twins") match nothing else
    for query, result in zip(queries, mined, strict=True):
        negatives = [c.doc_id for c in result.negatives]
        assert not set(negatives) & set(qrels[query.query_id])
        assert len(set(negatives)) == len(negatives)
        scores = [c.score for c in result.negatives]
        assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
        for doc_id in negatives:
            assert _terms(query.text) & _terms(corpus_text[doc_id]), (query.text, doc_id)
