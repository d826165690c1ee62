"""Dense candidates: the nearest passages of a query under a bi-encoder.

Two ways to the same ranking:

* :class:`DenseMiner` embeds the corpus once and searches it exactly with torch, chunk by chunk so that the
  ``queries x corpus`` score matrix is never held whole. Use it when no collection exists yet, e.g. to mine with
  the model of a previous round.
* :class:`QdrantMiner` searches a collection built by ``mpr index``, reusing its vectors: no corpus encoding, only
  the queries are embedded. Local Qdrant searches exactly; a server uses its HNSW index (approximate).

Queries and passages are embedded through sentence-transformers' ``encode_query`` / ``encode_document``, which
apply the run's prefixes and maximum lengths; scores are the model's similarity (cosine or dot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import datasets
import torch
import torch.nn.functional as F
from qdrant_client import QdrantClient, models

from mpretriever.data.beir import passage_text
from mpretriever.index.collection import point_id
from mpretriever.index.indexer import cpu_pool, default_workers
from mpretriever.mining.base import Candidate, MiningQuery, Ranking
from mpretriever.model.bi_encoder import BiEncoder

logger = logging.getLogger(__name__)

ENCODE_CHUNK = 4096
SCORE_CHUNK = 65536


def _prepare(embeddings: torch.Tensor, similarity: str) -> torch.Tensor:
    embeddings = embeddings.float()
    return F.normalize(embeddings, dim=-1) if similarity == "cosine" else embeddings


def encode_corpus(
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    batch_size: int = 64,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Embeddings ``(len(corpus), dimension)`` of every passage (``title + " " + text``), in corpus order.

    ``workers=None`` picks sentence-transformers' multi-process pool on CPU-only machines for large corpora, as
    ``mpr index`` does; ``on_progress(n)`` is called after each chunk of ``n`` passages.
    """
    workers = default_workers(len(corpus), encoder.backend) if workers is None else workers
    parts: list[torch.Tensor] = []
    with cpu_pool(encoder, workers) as pool:
        for start in range(0, len(corpus), ENCODE_CHUNK):
            chunk = corpus[start : start + ENCODE_CHUNK]
            texts = [passage_text(title, text) for title, text in zip(chunk["title"], chunk["text"], strict=True)]
            embeddings = encoder.model.encode_document(
                texts, batch_size=batch_size, pool=pool, convert_to_tensor=True, show_progress_bar=False
            )
            parts.append(embeddings.detach())
            if on_progress is not None:
                on_progress(len(texts))
    if not parts:
        raise ValueError("cannot mine an empty corpus")
    return torch.cat([part.to(parts[0].device) for part in parts])


class DenseMiner:
    """Exact nearest-neighbour search over corpus embeddings held in memory (on the encoder's device).

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
        if len(doc_ids) != embeddings.shape[0]:
            raise ValueError(f"{len(doc_ids)} document ids but {embeddings.shape[0]} embeddings")
        self.encoder = encoder
        self.similarity = encoder.config.similarity
        self.doc_ids = list(doc_ids)
        self.row_of = {doc_id: row for row, doc_id in reversed(list(enumerate(self.doc_ids)))}
        self.embeddings = _prepare(embeddings, self.similarity)
        self.batch_size = batch_size
        self.score_chunk = score_chunk

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
        embeddings = encode_corpus(encoder, corpus, batch_size, workers, on_progress)
        return cls(encoder, corpus["_id"], embeddings, batch_size=batch_size)

    def embed_queries(self, texts: Sequence[str]) -> torch.Tensor:
        embeddings = self.encoder.model.encode_query(
            list(texts), batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return _prepare(embeddings.to(self.embeddings.device), self.similarity)

    @torch.inference_mode()
    def rank(self, queries: Sequence[MiningQuery], depth: int) -> list[Ranking]:
        """The ``depth`` nearest passages of each query outside its excluded set, best first."""
        if not queries:
            return []
        vectors = self.embed_queries([q.text for q in queries])
        excluded = [
            torch.tensor(sorted(self.row_of[d] for d in q.excluded if d in self.row_of), dtype=torch.long)
            for q in queries
        ]
        best_scores = vectors.new_empty((len(queries), 0))
        best_rows = torch.empty((len(queries), 0), dtype=torch.long, device=vectors.device)
        for start in range(0, len(self.doc_ids), self.score_chunk):
            scores = vectors @ self.embeddings[start : start + self.score_chunk].T
            end = start + scores.shape[1]
            for i, rows in enumerate(excluded):
                inside = rows[(rows >= start) & (rows < end)] - start
                scores[i, inside.to(scores.device)] = float("-inf")
            top_scores, top_rows = scores.topk(min(depth, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, top_scores], dim=1)
            merged_rows = torch.cat([best_rows, top_rows + start], dim=1)
            best_scores, order = merged_scores.topk(min(depth, merged_scores.shape[1]), dim=1)
            best_rows = merged_rows.gather(1, order)
        rankings = []
        for i, query in enumerate(queries):
            candidates = tuple(
                Candidate(self.doc_ids[row], score)
                for row, score in zip(best_rows[i].tolist(), best_scores[i].tolist(), strict=True)
                if score != float("-inf")
            )
            positive_rows = [self.row_of[d] for d in query.positives if d in self.row_of]
            positive_scores = (self.embeddings[positive_rows] @ vectors[i]).tolist() if positive_rows else []
            rankings.append(Ranking(query.query_id, candidates, tuple(positive_scores)))
        return rankings


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
        vectors = self.encoder.model.encode_query(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
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
