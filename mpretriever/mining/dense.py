"""Dense candidates: the nearest passages of a query under a bi-encoder.

Two ways to the same ranking:

* :class:`DenseMiner` embeds the corpus once and searches it exactly with torch
  (:class:`mpretriever.search.exact.ExactIndex`, chunk by chunk so that the ``queries x corpus`` score matrix is
  never held whole). Use it when no collection exists yet, e.g. to mine with the model of a previous round.
* :class:`QdrantMiner` searches a collection built by ``mpr index``, reusing its vectors: no corpus encoding, only
  the queries are embedded. Local Qdrant searches exactly; a server uses its HNSW index (approximate).

Queries and passages are embedded through :meth:`~mpretriever.model.BiEncoder.encode` (sentence-transformers'
``encode_query`` / ``encode_document``), which applies the run's prefixes and the encoder's lengths and logs how many
texts were cut; scores are the model's similarity (cosine or dot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import torch
from qdrant_client import QdrantClient, models

from mpretriever.index.collection import point_id
from mpretriever.mining.base import Candidate, MiningQuery, Ranking
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.search.embeddings import ENCODE_CHUNK, encode_corpus
from mpretriever.search.exact import SCORE_CHUNK, ExactIndex

logger = logging.getLogger(__name__)

__all__ = ["ENCODE_CHUNK", "SCORE_CHUNK", "DenseMiner", "QdrantMiner", "encode_corpus"]


class DenseMiner:
    """Exact nearest-neighbour search over corpus embeddings held in memory (on the encoder's device), through
    :class:`~mpretriever.search.exact.ExactIndex`.

    Build it with :meth:`from_corpus` (encodes the corpus) or directly from precomputed ``embeddings`` whose rows
    follow ``doc_ids``.
    """

    name = "dense"

    def __init__(
        self,
        encoder: BiEncoder,
        doc_ids: Sequence[str],
        embeddings: torch.Tensor,
        batch_size: int = 64,
        score_chunk: int = SCORE_CHUNK,
    ) -> None:
        self.index = ExactIndex(encoder, doc_ids, embeddings, batch_size=batch_size, score_chunk=score_chunk)

    @classmethod
    def from_corpus(
        cls,
        encoder: BiEncoder,
        corpus: datasets.Dataset,
        batch_size: int = 64,
        workers: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> DenseMiner:
        """Encode ``corpus`` (columns ``_id``, ``title``, ``text``) and keep its embeddings for searching."""
        if len(corpus) == 0:
            raise ValueError("cannot mine an empty corpus")
        embeddings = encode_corpus(encoder, corpus, batch_size, workers, on_progress)
        return cls(encoder, corpus["_id"], embeddings, batch_size=batch_size)

    @property
    def doc_ids(self) -> list[str]:
        return self.index.doc_ids

    @property
    def embeddings(self) -> torch.Tensor:
        return self.index.embeddings

    def embed_queries(self, texts: Sequence[str]) -> torch.Tensor:
        return self.index.embed_queries(texts)

    @torch.inference_mode()
    def rank(self, queries: Sequence[MiningQuery], depth: int) -> list[Ranking]:
        """The ``depth`` nearest passages of each query outside its excluded set, best first."""
        if not queries:
            return []
        vectors = self.embed_queries([q.text for q in queries])
        hits = self.index.search_embeddings(vectors, depth, excluded=[q.excluded for q in queries])
        return [
            Ranking(
                query.query_id,
                tuple(Candidate(hit.doc_id, hit.score) for hit in found),
                tuple(self.index.scores(vectors[i], query.positives)),
            )
            for i, (query, found) in enumerate(zip(queries, hits, strict=True))
        ]


class QdrantMiner:
    """Nearest passages from a Qdrant collection filled by ``mpr index`` (payload ``id`` = document id).

    The caller owns ``client`` (and closes it); ``encoder`` must be the model the collection was indexed with
    (see :func:`mpretriever.index.check_compatible`).
    """

    name = "dense (Qdrant)"

    def __init__(self, client: QdrantClient, collection: str, encoder: BiEncoder, batch_size: int = 64) -> None:
        self.client = client
        self.collection = collection
        self.encoder = encoder
        self.batch_size = batch_size

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.encoder.encode(
            texts, "query", batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return [vector.astype("float32").tolist() for vector in vectors]

    @staticmethod
    def _ids(points: Sequence[Any]) -> list[Candidate]:
        candidates = []
        for point in points:
            doc_id = (point.payload or {}).get("id")
            if doc_id is None:
                raise ValueError(
                    f"point {point.id} has no 'id' in its payload: the collection was not built by mpr index "
                    "(Haystack's QdrantDocumentStore layout)"
                )
            candidates.append(Candidate(str(doc_id), float(point.score)))
        return candidates

    def rank(self, queries: Sequence[MiningQuery], depth: int) -> list[Ranking]:
        """The ``depth`` nearest points of each query outside its excluded set, best first."""
        if not queries:
            return []
        vectors = self.embed_queries([q.text for q in queries])
        searches: list[models.QueryRequest] = []
        for query, vector in zip(queries, vectors, strict=True):
            excluded = [point_id(d) for d in sorted(query.excluded)]
            condition = models.Filter(must_not=[models.HasIdCondition(has_id=excluded)]) if excluded else None
            searches.append(models.QueryRequest(query=vector, filter=condition, limit=depth, with_payload=["id"]))
        positive_searches = [
            models.QueryRequest(
                query=vector,
                filter=models.Filter(must=[models.HasIdCondition(has_id=[point_id(d) for d in query.positives])]),
                limit=len(query.positives),
                with_payload=["id"],
            )
            for query, vector in zip(queries, vectors, strict=True)
            if query.positives
        ]
        responses = self.client.query_batch_points(self.collection, requests=searches + positive_searches)
        found, positives = iter(responses[: len(queries)]), iter(responses[len(queries) :])
        rankings = []
        for query in queries:
            candidates = [c for c in self._ids(next(found).points) if c.doc_id not in query.excluded]
            positive_scores = tuple(c.score for c in self._ids(next(positives).points)) if query.positives else ()
            rankings.append(Ranking(query.query_id, tuple(candidates), positive_scores))
        return rankings
