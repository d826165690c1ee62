"""The interface every miner implements: a query in, its best-scoring unlabelled documents out.

A miner (BM25 in :mod:`mpretriever.mining.bm25`, a dense model in :mod:`mpretriever.mining.dense`) only ranks;
which candidates become negatives (rank window, margin, count) is decided by :mod:`mpretriever.mining.selection`,
so every miner is filtered the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Candidate:
    """A document retrieved for a query, with the miner's score (higher is more similar)."""

    doc_id: str
    score: float


@dataclass(frozen=True)
class MiningQuery:
    """A query to mine negatives for.

    ``positives`` are its documents labelled relevant in the mined split (their scores set the margin);
    ``excluded`` holds every document that must never be returned as a negative: the positives, the other
    documents judged in the mined split, and the documents labelled relevant in other qrels.
    """

    query_id: str
    text: str
    positives: tuple[str, ...]
    excluded: frozenset[str]


@dataclass(frozen=True)
class Ranking:
    """What a miner found for one query.

    ``candidates``: best first, none of them in the query's ``excluded`` set; ``positive_scores``: the miner's
    score of each positive it knows (a positive missing from the corpus or the collection has none).
    """

    query_id: str
    candidates: tuple[Candidate, ...]
    positive_scores: tuple[float, ...]


@runtime_checkable
class Miner(Protocol):
    """Ranks the corpus for a batch of queries.

    ``rank(queries, depth)`` returns, for each query in order, up to ``depth`` candidates outside the query's
    ``excluded`` set, best first, and the scores of its positives, on the same scale as the candidates'.
    """

    name: str

    def rank(self, queries: Sequence[MiningQuery], depth: int) -> list[Ranking]: ...
