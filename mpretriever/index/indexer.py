"""Indexing a corpus into Qdrant: idempotent, resumable, true to the corpus, parallel on CPUs, with progress.

Point ids derive from document ids, so a re-run adds nothing twice; before encoding, every chunk of documents is
checked against the collection and only the missing ones, and those whose title or text changed (their stored
content fingerprint differs), are encoded and written, so an interrupted run resumes where it stopped. Points
whose documents left the corpus are counted, and deleted on request (``sync``). Encoding goes through
sentence-transformers' ``encode_document`` (batches sorted by length, the query/document prompts and lengths of
the run); on CPUs it can use a multi-process pool with one thread per process, which beats one process with
several threads, and whose workers exit when their parent dies, even by ``kill -9``. The upsert of a chunk
overlaps with the encoding of the next; it is split into requests well under Qdrant's request size limit, each
retried with back-off on transient server errors.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import datasets
import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from rich.console import Console

from mpretriever.data.beir import passage_text
from mpretriever.index.collection import FINGERPRINT_FIELD, content_fingerprint, document_payload, point_id
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.model.encoding_pool import cpu_pool, default_workers
from mpretriever.progress import task_progress
from mpretriever.search.embeddings import EmbeddingCache

logger = logging.getLogger(__name__)


# Qdrant refuses REST requests over 32 MB by default (service.max_request_size_mb); a quarter of that also keeps
# each request well inside the client's timeout.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
JSON_BYTES_PER_FLOAT = 25  # the longest JSON float, "-2.2250738585072014e-308", and its comma
POINT_OVERHEAD_BYTES = 128  # the id and the keys around vector and payload
UPSERT_ATTEMPTS = 5
FIRST_RETRY_DELAY_S = 0.5
DELETE_BATCH = 10_000


@dataclass
class IndexStats:
    """What one indexing run did. ``written`` counts every point upserted, ``updated`` those of them that replaced
    a point whose title or text had changed; ``stale`` counts the points of the collection whose ids are not in the
    corpus (after the run: 0 when ``deleted`` removed them); ``from_cache``: whether the written vectors were read
    from the embedding cache instead of encoded."""

    documents: int
    written: int
    already_present: int
    points_in_collection: int
    updated: int = 0
    stale: int = 0
    deleted: int = 0
    from_cache: bool = False


def _chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def _hex(point: models.Record) -> str:
    return str(point.id).replace("-", "")


def _stored_fingerprints(client: QdrantClient, collection: str, ids: list[str]) -> dict[str, str | None]:
    """The content fingerprint of each of ``ids`` that the collection holds (``None``: a point without one)."""
    records = client.retrieve(collection, ids=ids, with_payload=[FINGERPRINT_FIELD], with_vectors=False)
    return {_hex(record): (record.payload or {}).get(FINGERPRINT_FIELD) for record in records}


def estimated_request_bytes(point: models.PointStruct) -> int:
    """An upper bound of the point's share of an upsert request's JSON body."""
    if not isinstance(point.vector, list):
        raise TypeError("request sizes are estimated for points with one dense vector")
    return POINT_OVERHEAD_BYTES + JSON_BYTES_PER_FLOAT * len(point.vector) + len(json.dumps(point.payload))


def request_batches(
    points: Iterable[models.PointStruct], max_bytes: int = MAX_REQUEST_BYTES
) -> Iterator[list[models.PointStruct]]:
    """``points`` in consecutive batches whose estimated request size stays under ``max_bytes`` (a point larger
    than that on its own goes alone)."""
    batch: list[models.PointStruct] = []
    size = 0
    for point in points:
        cost = estimated_request_bytes(point)
        if batch and size + cost > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(point)
        size += cost
    if batch:
        yield batch


def retry_delay(error: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``error`` (exponential back-off, or the server's Retry-After), or
    ``None`` when it is not transient: only an overloaded or failing server (429, 5xx), a timeout or a dropped
    connection is."""
    backoff = FIRST_RETRY_DELAY_S * 2 ** (attempt - 1)
    if isinstance(error, ResourceExhaustedResponse):
        return max(backoff, error.retry_after_s)
    if isinstance(error, UnexpectedResponse):
        status = error.status_code or 0
        return backoff if status == 429 or status >= 500 else None
    if isinstance(error, ResponseHandlingException):  # wraps the transport's error, or a malformed response
        error = error.source
    return backoff if isinstance(error, httpx.TransportError | TimeoutError | ConnectionError) else None


def upsert_with_retry(client: QdrantClient, collection: str, points: list[models.PointStruct]) -> None:
    """``client.upsert`` retried with exponential back-off on transient errors (upserts are idempotent).
    qdrant-client's own retry (``upload_points(max_retries=)``) retries at once, and every error alike."""
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        try:
            client.upsert(collection, points, wait=True)
            return
        except Exception as error:
            delay = retry_delay(error, attempt)
            if attempt == UPSERT_ATTEMPTS or delay is None:
                raise
            logger.warning(
                "writing %d points to '%s' failed (%s); retrying in %.1f s", len(points), collection, error, delay
            )
            time.sleep(delay)


def write_points(
    client: QdrantClient, collection: str, points: list[models.PointStruct], max_bytes: int = MAX_REQUEST_BYTES
) -> None:
    """Upsert ``points`` in requests under ``max_bytes``, each retried on transient errors."""
    for batch in request_batches(points, max_bytes):
        upsert_with_retry(client, collection, batch)


def delete_points_outside(client: QdrantClient, collection: str, kept: set[str]) -> int:
    """Delete every point whose id (hex, as :func:`~mpretriever.index.collection.point_id` gives) is not in
    ``kept``; returns how many were deleted."""
    outside: list[str] = []
    offset: Any = None
    while True:
        points, offset = client.scroll(
            collection, limit=DELETE_BATCH, offset=offset, with_payload=False, with_vectors=False
        )
        outside += [pid for pid in map(_hex, points) if pid not in kept]
        if offset is None:
            break
    for start in range(0, len(outside), DELETE_BATCH):
        batch = outside[start : start + DELETE_BATCH]
        client.delete(collection, points_selector=models.PointIdsList(points=batch), wait=True)  # type: ignore[arg-type]
    return len(outside)


@dataclass(frozen=True)
class ChunkPlan:
    """What a chunk of the corpus needs: its point ids, and the offsets (into the chunk) of the passages the
    collection lacks or holds with another title or text."""

    ids: list[str]
    to_embed: list[int]
    updated: int  # of to_embed, those whose point exists with another fingerprint


def plan_chunk(client: QdrantClient, collection: str, chunk: dict[str, list[Any]]) -> ChunkPlan:
    """Compare a chunk of corpus rows (columns ``_id``, ``title``, ``text``) with what the collection stores."""
    ids = [point_id(doc_id) for doc_id in chunk["_id"]]
    stored = _stored_fingerprints(client, collection, ids)
    fingerprints = [content_fingerprint(title, text) for title, text in zip(chunk["title"], chunk["text"], strict=True)]
    to_embed = [
        offset
        for offset, (pid, fingerprint) in enumerate(zip(ids, fingerprints, strict=True))
        if stored.get(pid, "") != fingerprint
    ]
    updated = sum(1 for offset in to_embed if ids[offset] in stored)
    return ChunkPlan(ids=ids, to_embed=to_embed, updated=updated)


def corpus_chunks(corpus: datasets.Dataset, chunk_size: int) -> Iterator[tuple[range, dict[str, list[Any]]]]:
    """The corpus's rows in consecutive chunks, with their row numbers."""
    for rows in _chunks(len(corpus), chunk_size):
        yield rows, corpus[rows.start : rows.stop]


def outdated_documents(client: QdrantClient, collection: str, corpus: datasets.Dataset, chunk_size: int = 2048) -> int:
    """How many passages of ``corpus`` the collection lacks, or holds with another title or text (0: it is
    complete)."""
    return sum(len(plan_chunk(client, collection, chunk).to_embed) for _, chunk in corpus_chunks(corpus, chunk_size))


def cached_embeddings(cache: EmbeddingCache, encoder: BiEncoder, corpus: datasets.Dataset) -> np.ndarray | None:
    """The embeddings of ``corpus`` under ``encoder`` if ``cache`` holds them (as float32 rows in corpus order)."""
    matrix = cache.load(EmbeddingCache.key(EmbeddingCache.describe(encoder, corpus)), len(corpus))
    return None if matrix is None else matrix.numpy()


def index_corpus(
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    client: QdrantClient,
    collection: str,
    batch_size: int = 64,
    chunk_size: int = 2048,
    workers: int | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    sync: bool = False,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    cache: EmbeddingCache | None = None,
) -> IndexStats:
    """Embed every passage of ``corpus`` (columns ``_id``, ``title``, ``text``) that the collection lacks or holds
    with another title or text; with ``sync``, also delete the points whose ids are not in ``corpus``.

    The collection must exist (see :func:`mpretriever.index.collection.ensure_collection`). ``workers=None``
    chooses with :func:`default_workers`. Points written before content fingerprints were stored count as changed.
    With a ``cache`` that holds this corpus's embeddings under this encoder (same weights, backend, passage prefix
    and length: stored by an evaluation or by a training run's dev evaluation), the vectors are read from it
    instead of encoded; the index stores nothing there.
    """
    written = present = updated = 0
    corpus_ids: set[str] = set()
    progress = task_progress(console, show_progress)
    cached = cached_embeddings(cache, encoder, corpus) if cache is not None else None
    if cached is not None:
        workers = 1  # nothing to encode: no pool to start
    workers = default_workers(len(corpus), encoder.backend) if workers is None else workers
    if workers > 1 and encoder.backend != "torch":
        raise ValueError(f"--workers > 1 needs the torch backend; the {encoder.backend} backend uses every core itself")
    with (
        cpu_pool(encoder, workers) as pool,
        progress,
        ThreadPoolExecutor(max_workers=1) as writer,
        encoder.counting_truncation("passage"),
    ):
        task = progress.add_task("indexing", total=len(corpus))
        pending: Future[Any] | None = None
        for rows, chunk in corpus_chunks(corpus, chunk_size):
            plan = plan_chunk(client, collection, chunk)
            if sync:
                corpus_ids.update(plan.ids)
            updated += plan.updated
            present += len(rows) - len(plan.to_embed)
            points: list[models.PointStruct] = []
            if plan.to_embed:
                if cached is not None:
                    embeddings = cached[[rows.start + offset for offset in plan.to_embed]]
                else:
                    texts = [passage_text(chunk["title"][i], chunk["text"][i]) for i in plan.to_embed]
                    embeddings = encoder.encode(
                        texts,
                        "passage",
                        batch_size=batch_size,
                        pool=pool,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                points = [
                    models.PointStruct(
                        id=plan.ids[offset],
                        vector=vector.tolist(),
                        payload=document_payload(chunk["_id"][offset], chunk["title"][offset], chunk["text"][offset]),
                    )
                    for offset, vector in zip(plan.to_embed, embeddings, strict=True)
                ]
            if pending is not None:
                pending.result()
            pending = writer.submit(write_points, client, collection, points, max_request_bytes) if points else None
            written += len(points)
            progress.update(task, advance=len(rows))
        if pending is not None:
            pending.result()
    deleted = delete_points_outside(client, collection, corpus_ids) if sync else 0
    count = client.count(collection, exact=True).count
    return IndexStats(
        documents=len(corpus),
        written=written,
        already_present=present,
        points_in_collection=count,
        updated=updated,
        stale=max(0, count - len(corpus)),  # after the run every corpus id is in the collection
        deleted=deleted,
        from_cache=cached is not None,
    )
