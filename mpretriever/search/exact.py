"""Exact nearest-neighbour search over corpus embeddings held in memory: the reference ranking of a bi-encoder.

:class:`ExactIndex` keeps the document ids and their embeddings (normalised when the model scores by cosine) and
ranks the whole corpus for a batch of queries with torch, chunk by chunk, so that the ``queries x corpus`` score
matrix is never held whole. It is what ``mpr eval`` searches by default and what
:class:`~mpretriever.mining.dense.DenseMiner` mines with; use it whenever there is no Qdrant collection, or to
measure what an approximate (HNSW) collection loses.

Hits come best first, with ties broken as ``trec_eval`` breaks them (see
:func:`~mpretriever.search.ranking.trec_order`), so the order of a
ranking, the ranks written to a TREC run file and the order ``trec_eval`` evaluates are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import datasets
import torch
import torch.nn.functional as F

from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.search.embeddings import ENCODE_CHUNK, EmbeddingCache, corpus_embeddings
from mpretriever.search.ranking import Hit, trec_order

SCORE_CHUNK = 65536


def prepare(embeddings: torch.Tensor, similarity: str) -> torch.Tensor:
    """Float32 embeddings ready for dot products: L2-normalised for ``"cosine"``, unchanged for ``"dot"``."""
    embeddings = embeddings.float()
    return F.normalize(embeddings, dim=-1) if similarity == "cosine" else embeddings


class ExactIndex:
    """Exact top-k search over corpus embeddings in memory (on the device of ``embeddings``).

    Build it with :meth:`from_corpus` (encodes the corpus, or reads its embeddings from an
    :class:`~mpretriever.search.embeddings.EmbeddingCache`) or directly from precomputed ``embeddings`` whose
    rows follow ``doc_ids``. Queries are embedded with ``encoder.encode`` (``encode_query``: the run's query
    prompt, the encoder's query length); scores are the model's similarity (cosine or dot).
    """

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
        if score_chunk < 1:
            raise ValueError(f"score_chunk must be positive, got {score_chunk}")
        self.encoder = encoder
        self.similarity = encoder.config.similarity
        self.doc_ids = list(doc_ids)
        self.row_of = {doc_id: row for row, doc_id in reversed(list(enumerate(self.doc_ids)))}
        self.embeddings = prepare(embeddings, self.similarity)
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
        cache: EmbeddingCache | None = None,
        chunk_size: int = ENCODE_CHUNK,
    ) -> ExactIndex:
        """Embed ``corpus`` (columns ``_id``, ``title``, ``text``) with ``encode_document`` and index it.

        With a ``cache``, embeddings computed before for the same model, backend and corpus are read instead of
        encoded (``on_progress`` then reports the whole corpus at once), and new ones are stored. ``on_progress(n)``
        is called after every ``chunk_size`` passages encoded.
        """
        embeddings = corpus_embeddings(encoder, corpus, batch_size, workers, on_progress, cache, chunk_size)
        return cls(encoder, corpus["_id"], embeddings, batch_size=batch_size)

    def __len__(self) -> int:
        return len(self.doc_ids)

    def embed_queries(self, texts: Sequence[str]) -> torch.Tensor:
        """Query embeddings ``(len(texts), dimension)``, prepared like the corpus (normalised for cosine)."""
        embeddings = self.encoder.encode(
            texts, "query", batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return prepare(embeddings.to(self.embeddings.device), self.similarity)

    def scores(self, vector: torch.Tensor, doc_ids: Sequence[str]) -> list[float]:
        """The scores of one prepared query ``vector`` for ``doc_ids`` (ids missing from the index are skipped)."""
        rows = [self.row_of[d] for d in doc_ids if d in self.row_of]
        return (self.embeddings[rows] @ vector).tolist() if rows else []

    @torch.inference_mode()
    def search_embeddings(
        self, vectors: torch.Tensor, k: int, excluded: Sequence[Collection[str]] | None = None
    ) -> list[list[Hit]]:
        """The ``k`` best documents for each prepared query vector (see :meth:`embed_queries`), best first.

        ``excluded[i]`` holds document ids never to return for query ``i``. Fewer than ``k`` hits come back only
        when the index (minus the excluded documents) is smaller than ``k``.
        """
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        count = vectors.shape[0]
        if excluded is not None and len(excluded) != count:
            raise ValueError(f"{count} queries but {len(excluded)} excluded sets")
        if count == 0:
            return []
        excluded_rows = [
            torch.tensor(sorted(self.row_of[d] for d in ids if d in self.row_of), dtype=torch.long)
            for ids in (excluded if excluded is not None else [()] * count)
        ]
        best_scores = vectors.new_empty((count, 0))
        best_rows = torch.empty((count, 0), dtype=torch.long, device=vectors.device)
        for start in range(0, len(self.doc_ids), self.score_chunk):
            scores = vectors @ self.embeddings[start : start + self.score_chunk].T
            end = start + scores.shape[1]
            for i, rows in enumerate(excluded_rows):
                inside = rows[(rows >= start) & (rows < end)] - start
                scores[i, inside.to(scores.device)] = float("-inf")
            top_scores, top_rows = scores.topk(min(k, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, top_scores], dim=1)
            merged_rows = torch.cat([best_rows, top_rows + start], dim=1)
            best_scores, order = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
            best_rows = merged_rows.gather(1, order)
        return [
            trec_order(
                [(self.doc_ids[row], score) for row, score in zip(rows, scores, strict=True) if score != float("-inf")]
            )
            for rows, scores in zip(best_rows.tolist(), best_scores.tolist(), strict=True)
        ]

    def search(
        self, query_texts: Sequence[str], k: int, excluded: Sequence[Collection[str]] | None = None
    ) -> list[list[Hit]]:
        """Embed ``query_texts`` and return the ``k`` best documents of each, best first (see
        :meth:`search_embeddings` for ``excluded``)."""
        if not query_texts:
            return []
        return self.search_embeddings(self.embed_queries(query_texts), k, excluded)
