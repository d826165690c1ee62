"""BM25 candidates with ``bm25s``: lexical hard negatives, no model needed.

Passages are indexed as ``title + " " + text`` (as they are embedded), lower-cased, tokenised on words of two or
more characters, without English stop words and, when PyStemmer is installed, stemmed with the English Snowball
stemmer. Only documents sharing at least one term with the query (score > 0) are candidates.

Use it for a first round of negatives before any model is trained, or when the negatives should be independent of
the model being trained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import bm25s
import datasets
import numpy as np

from mpretriever.data.beir import passage_texts
from mpretriever.mining.base import Candidate, MiningQuery, Ranking

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG when imported

STOPWORDS = "en"


def default_stemmer() -> Any | None:
    """The English Snowball stemmer of PyStemmer, or ``None`` when PyStemmer is not installed."""
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


class BM25Miner:
    """Exact BM25 (Lucene variant, ``k1=1.5``, ``b=0.75``) over a corpus held in memory.

    Build it with :meth:`from_texts`; :meth:`rank` scores every document for each query.
    """

    name = "bm25"

    def __init__(self, retriever: bm25s.BM25, doc_ids: Sequence[str], stemmer: Any | None = None) -> None:
        self.retriever = retriever
        self.doc_ids = list(doc_ids)
        self.row_of = {doc_id: row for row, doc_id in reversed(list(enumerate(self.doc_ids)))}
        self.stemmer = stemmer

    @classmethod
    def from_texts(
        cls,
        doc_ids: Sequence[str],
        texts: Sequence[str],
        stemmer: Any | None = "auto",
        k1: float = 1.5,
        b: float = 0.75,
    ) -> BM25Miner:
        """Index ``texts`` (one per id). ``stemmer="auto"`` uses PyStemmer when installed, ``None`` disables it."""
        if len(doc_ids) != len(texts):
            raise ValueError(f"{len(doc_ids)} document ids but {len(texts)} texts")
        if not texts:
            raise ValueError("cannot index an empty corpus")
        if stemmer == "auto":
            stemmer = default_stemmer()
        logger.info("BM25: indexing %d passages (%s)", len(texts), "stemmed" if stemmer else "not stemmed")
        tokens = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(tokens, show_progress=False)
        return cls(retriever, doc_ids, stemmer)

    @classmethod
    def from_corpus(cls, corpus: datasets.Dataset) -> BM25Miner:
        """Index a BEIR corpus (columns ``_id``, ``title``, ``text``), each passage as it is embedded."""
        return cls.from_texts(corpus["_id"], passage_texts(corpus))

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(
            list(texts), stopwords=STOPWORDS, stemmer=self.stemmer, return_ids=False, show_progress=False
        )

    def _scores(self, tokens: list[str]) -> np.ndarray:
        token_ids = self.retriever.get_tokens_ids(tokens)
        if not token_ids:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return np.array(self.retriever.get_scores(token_ids), dtype=np.float32)

    def scores(self, text: str) -> np.ndarray:
        """The BM25 score of every document for ``text`` (zeros when no query term is in the vocabulary)."""
        return self._scores(self._tokens([text])[0])

    def rank(self, queries: Sequence[MiningQuery], depth: int) -> list[Ranking]:
        """Up to ``depth`` documents per query with a positive BM25 score, excluded ones left out, best first."""
        if not queries:
            return []
        rankings: list[Ranking] = []
        for query, tokens in zip(queries, self._tokens([q.text for q in queries]), strict=True):
            scores = self._scores(tokens)
            positive_rows = [self.row_of[d] for d in query.positives if d in self.row_of]
            positive_scores = tuple(float(scores[row]) for row in positive_rows)
            excluded_rows = [self.row_of[d] for d in query.excluded if d in self.row_of]
            scores[excluded_rows] = 0.0
            rankings.append(Ranking(query.query_id, self._top(scores, depth), positive_scores))
        return rankings

    def _top(self, scores: np.ndarray, depth: int) -> tuple[Candidate, ...]:
        matching = np.flatnonzero(scores > 0)
        if len(matching) > depth:
            matching = matching[np.argpartition(-scores[matching], depth - 1)[:depth]]
        order = matching[np.lexsort((matching, -scores[matching]))]  # best first, ties by corpus order
        return tuple(Candidate(self.doc_ids[row], float(scores[row])) for row in order)
