"""Indexing one corpus from many processes: ``torchrun --nnodes N --nproc-per-node G -m mpretriever.cli index ...``
(or ``accelerate launch -m mpretriever.cli index ...``).

Every process loads the corpus and the model (on GPU ``LOCAL_RANK`` when there are GPUs) and encodes its own shard:
the passages whose id hashes (SHA-256) to its rank, a split that does not depend on the corpus's order. Process 0
chooses and creates the collection (the alias's version, as one process would), and once every shard is written it
checks that the collection holds the whole corpus and moves the alias: readers never see a partial index.

- **Qdrant server**: every process checks which of its shard's passages the collection lacks and writes its own
  points, so writing scales with the processes; after a crash, a rerun re-encodes only what is missing.
- **Embedded Qdrant** (one process may open the directory): process 0 checks the whole corpus, every process
  encodes its share of what is missing, and process 0 writes what they send it (over the process group).

The processes talk over a gloo process group (the one the launcher's environment describes), which carries Python
objects on CPUs and GPUs alike; encoding itself needs no collective operation.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import datasets
    from qdrant_client import QdrantClient
    from rich.console import Console

    from mpretriever.index.connection import QdrantSettings
    from mpretriever.index.indexer import IndexStats
    from mpretriever.index.run import IndexOutcome, IndexRequest
    from mpretriever.model.bi_encoder import BiEncoder

T = TypeVar("T")
CHUNK_SIZE = 2048


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the processes a launcher started."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world_size() -> int:
    """How many processes the launcher (torchrun, accelerate) started; 1 when run directly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_device() -> str | None:
    """The GPU of this process under a launcher (``cuda:LOCAL_RANK``), else ``None`` (the encoder's default)."""
    import torch

    if launched_world_size() > 1 and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return None


@contextmanager
def launched_group() -> Iterator[ProcessGroup | None]:
    """The process group of a launched run (joined here, and left afterwards, if no one joined it before), or
    ``None`` when this is the only process."""
    if launched_world_size() <= 1:
        yield None
        return
    import torch.distributed as dist

    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("gloo")
    try:
        yield ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())
    finally:
        if joined:
            dist.destroy_process_group()


def shard_of(doc_id: str, world_size: int) -> int:
    """The process that encodes document ``doc_id``: a stable hash of the id, not of its place in the corpus."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "little") % world_size


def _on_main(group: ProcessGroup, work: Callable[[], T]) -> T:
    """Run ``work`` on process 0 and give every process its result; what it raises is raised on every process."""
    import torch.distributed as dist

    message: list[Any] = [None]
    if group.is_main:
        try:
            message = [(work(), None)]
        except Exception as error:
            message = [(None, error)]
            dist.broadcast_object_list(message, src=0)
            raise
    dist.broadcast_object_list(message, src=0)
    result, error = message[0]
    if error is not None:
        raise error
    return result


def _sum_stats(parts: list[IndexStats]) -> tuple[int, int, int]:
    return sum(p.written for p in parts), sum(p.already_present for p in parts), sum(p.updated for p in parts)


def index_sharded(
    group: ProcessGroup,
    request: IndexRequest,
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    settings: QdrantSettings,
    batch_size: int = 64,
    console: Console | None = None,
    show_progress: bool = True,
    each_process_writes: bool | None = None,
) -> IndexOutcome:
    """:func:`~mpretriever.index.run.index_dataset` from every process of ``group`` (see the module docstring);
    every process returns the same outcome. Each process encodes with one process of its own (no pool).

    ``each_process_writes``: whether every process writes its own points (default: with a Qdrant server) or
    process 0 writes them all (default: with an embedded Qdrant, which one process may open)."""
    import torch.distributed as dist

    from mpretriever.index.indexer import IndexStats, delete_points_outside, index_corpus
    from mpretriever.index.run import complete_collection, prepare_collection

    embedded = settings.url is None if each_process_writes is None else not each_process_writes
    client = settings.connect() if group.is_main or not embedded else None
    progress = show_progress and group.is_main
    try:
        target, created = _on_main(group, lambda: prepare_collection(_main_client(client), encoder, request))
        if embedded:
            counts = _encode_for_main(group, encoder, corpus, client, target, batch_size, console, progress)
            written, present, updated = counts
        else:
            assert client is not None
            rows = [row for row, doc_id in enumerate(corpus["_id"]) if shard_of(doc_id, group.world_size) == group.rank]
            own = index_corpus(
                encoder,
                corpus.select(rows),
                client,
                target,
                batch_size,
                workers=1,
                console=console,
                show_progress=progress,
            )
            parts: list[Any] = [None] * group.world_size
            dist.all_gather_object(parts, own)
            written, present, updated = _sum_stats(parts)

        def finish() -> IndexOutcome:
            main = _main_client(client)
            deleted = 0
            if request.sync:
                from mpretriever.index.collection import point_id

                deleted = delete_points_outside(main, target, {point_id(doc_id) for doc_id in corpus["_id"]})
            previous = complete_collection(main, target, corpus, request)
            count = main.count(target, exact=True).count
            stats = IndexStats(
                documents=len(corpus),
                written=written,
                already_present=present,
                points_in_collection=count,
                updated=updated,
                stale=max(0, count - len(corpus)),
                deleted=deleted,
            )
            return request.outcome(target, settings.location, created, stats, previous)

        return _on_main(group, finish)
    finally:
        if client is not None:
            client.close()


def _main_client(client: QdrantClient | None) -> QdrantClient:
    assert client is not None, "process 0 holds a client"
    return client


def _encode_for_main(
    group: ProcessGroup,
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    client: QdrantClient | None,
    target: str,
    batch_size: int,
    console: Console | None,
    show_progress: bool,
) -> tuple[int, int, int]:
    """Embedded Qdrant: process 0 finds what the collection lacks, every process encodes its share of it in
    rounds, and process 0 writes each round's points. Returns (written, already present, updated)."""
    import numpy as np
    import torch.distributed as dist
    from qdrant_client import models

    from mpretriever.data.beir import passage_texts
    from mpretriever.index.collection import document_payload, point_id
    from mpretriever.index.indexer import corpus_chunks, plan_chunk, write_points
    from mpretriever.progress import task_progress

    def plan() -> tuple[list[int], int]:
        missing, updated = [], 0
        for rows, chunk in corpus_chunks(corpus, CHUNK_SIZE):
            chunk_plan = plan_chunk(_main_client(client), target, chunk)
            missing += [rows.start + offset for offset in chunk_plan.to_embed]
            updated += chunk_plan.updated
        return missing, updated

    missing, updated = _on_main(group, plan)
    ids = corpus["_id"]
    shares: list[list[int]] = [[] for _ in range(group.world_size)]
    for row in missing:
        shares[shard_of(ids[row], group.world_size)].append(row)
    mine = shares[group.rank]
    rounds = math.ceil(max(len(share) for share in shares) / CHUNK_SIZE) if missing else 0
    with task_progress(console, show_progress) as progress, encoder.counting_truncation("passage"):
        task = progress.add_task("indexing", total=len(missing))
        for number in range(rounds):
            rows = mine[number * CHUNK_SIZE : (number + 1) * CHUNK_SIZE]
            vectors = np.zeros((0, encoder.dimension), dtype=np.float32)
            if rows:
                vectors = encoder.encode(
                    passage_texts(corpus.select(rows)),
                    "passage",
                    batch_size=batch_size,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            received: list[Any] | None = [None] * group.world_size if group.is_main else None
            dist.gather_object((rows, vectors), received, dst=0)
            if received is not None:
                points = []
                for sent_rows, sent_vectors in received:
                    if not sent_rows:
                        continue
                    sent = corpus.select(sent_rows)
                    for doc_id, title, text, vector in zip(
                        sent["_id"], sent["title"], sent["text"], sent_vectors, strict=True
                    ):
                        payload = document_payload(doc_id, title, text)
                        points.append(models.PointStruct(id=point_id(doc_id), vector=vector.tolist(), payload=payload))
                write_points(_main_client(client), target, points)
                progress.update(task, advance=len(points))
    return len(missing), len(corpus) - len(missing), updated
