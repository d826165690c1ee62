"""Indexing a corpus into Qdrant: idempotent, resumable, parallel on CPUs, progress on the console.

Point ids derive from document ids, so a re-run adds nothing twice; before encoding, every chunk of documents is
checked against the collection and only the missing ones are encoded and written, so an interrupted run resumes
where it stopped. Encoding goes through sentence-transformers' ``encode_document`` (batches sorted by length, the
query/document prompts and lengths of the run); on CPUs it can use sentence-transformers' multi-process pool with
one thread per process, which beats one process with several threads. The upsert of a chunk overlaps with the
encoding of the next.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import datasets
import torch
from qdrant_client import QdrantClient, models
from rich.console import Console

from mpretriever.data.beir import passage_text
from mpretriever.index.collection import document_payload, point_id
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.progress import task_progress

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class IndexStats:
    """What one indexing run did."""

    documents: int
    written: int
    already_present: int
    points_in_collection: int


def default_workers(documents: int, backend: str = "torch") -> int:
    """Encoding processes worth starting: one per core on CPU-only machines for corpora large enough to repay
    the start-up (a few seconds per process), else one. The ONNX backends run in one process (ONNX Runtime uses
    every core itself)."""
    if backend != "torch" or torch.cuda.is_available() or documents < 2000:
        return 1
    return max(1, os.cpu_count() or 1)


@contextmanager
def cpu_pool(encoder: BiEncoder, workers: int) -> Iterator[dict[str, Any] | None]:
    """sentence-transformers' multi-process pool with one thread per process (``None`` for one worker)."""
    if workers <= 1:
        yield None
        return
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))  # read by torch when each spawned worker starts
    try:
        pool = encoder.model.start_multi_process_pool(["cpu"] * workers)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield pool
    finally:
        encoder.model.stop_multi_process_pool(pool)


def _chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def _existing(client: QdrantClient, collection: str, ids: list[str]) -> set[str]:
    records = client.retrieve(collection, ids=ids, with_payload=False, with_vectors=False)
    return {str(record.id).replace("-", "") for record in records}


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
) -> IndexStats:
    """Embed every passage of ``corpus`` (columns ``_id``, ``title``, ``text``) that the collection lacks.

    The collection must exist (see :func:`mpretriever.index.collection.ensure_collection`). ``workers=None``
    chooses with :func:`default_workers`.
    """
    written = present = 0
    progress = task_progress(console, show_progress)
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
        for rows in _chunks(len(corpus), chunk_size):
            chunk = corpus[rows.start : rows.stop]
            ids = [point_id(doc_id) for doc_id in chunk["_id"]]
            existing = _existing(client, collection, ids)
            missing = [offset for offset, pid in enumerate(ids) if pid not in existing]
            present += len(rows) - len(missing)
            points: list[models.PointStruct] = []
            if missing:
                texts = [passage_text(chunk["title"][i], chunk["text"][i]) for i in missing]
                embeddings = encoder.encode(
                    texts, "passage", batch_size=batch_size, pool=pool, convert_to_numpy=True, show_progress_bar=False
                )
                points = [
                    models.PointStruct(
                        id=ids[offset],
                        vector=vector.tolist(),
                        payload=document_payload(chunk["_id"][offset], chunk["title"][offset], chunk["text"][offset]),
                    )
                    for offset, vector in zip(missing, embeddings, strict=True)
                ]
            if pending is not None:
                pending.result()
            pending = writer.submit(client.upsert, collection, points, wait=True) if points else None
            written += len(points)
            progress.update(task, advance=len(rows))
        if pending is not None:
            pending.result()
    count = client.count(collection, exact=True).count
    return IndexStats(documents=len(corpus), written=written, already_present=present, points_in_collection=count)
