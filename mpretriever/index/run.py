"""Indexing a dataset's corpus into a collection, as ``mpr index`` and the demo's ``init`` service do: connect,
create or check the collection (model, backend, corpus), write what is missing or changed, report.

Only the standard library is imported at module level, so the command line can import :func:`model_reference`
without loading torch or Haystack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from rich.console import Console

    from mpretriever.index.connection import QdrantSettings
    from mpretriever.index.indexer import IndexStats
    from mpretriever.model.bi_encoder import BiEncoder


def model_reference(model: str | None) -> str:
    """How the collection records the model: an absolute path for local directories, else the name given."""
    from mpretriever.model.bi_encoder import DEFAULT_MODEL_NAME

    if model is None:
        return DEFAULT_MODEL_NAME
    return str(Path(model).resolve()) if Path(model).exists() else model


@dataclass(frozen=True)
class IndexOutcome:
    """Where a corpus was indexed and what the run did."""

    collection: str
    location: str
    created: bool
    stats: IndexStats

    @property
    def changed_anything(self) -> bool:
        return self.created or self.stats.written > 0 or self.stats.deleted > 0

    def summary(self) -> str:
        """One line: the counts, then what was re-embedded or deleted, and any points outside the corpus."""
        stats = self.stats
        line = (
            f"{'created' if self.created else 'updated'} collection '{self.collection}' in {self.location}: "
            f"{stats.written} written, {stats.already_present} already present, "
            f"{stats.points_in_collection} points in the collection"
        )
        if stats.updated:
            line += f"; {stats.updated} of the written re-embedded because their title or text changed"
        if stats.deleted:
            line += f"; {stats.deleted} points whose documents left the corpus deleted"
        if stats.stale:
            line += (
                f"; {stats.stale} points are not in this corpus (documents removed from it, or another corpus "
                "merged in): --sync deletes them"
            )
        return line


def index_dataset(
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    corpus_name: str,
    settings: QdrantSettings,
    collection: str,
    model_name: str,
    recreate: bool = False,
    sync: bool = False,
    allow_other_corpus: bool = False,
    batch_size: int = 64,
    workers: int | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> IndexOutcome:
    """Index ``corpus`` (named ``corpus_name`` in the collection's manifest) into ``collection``.

    Refuses (:class:`~mpretriever.index.collection.CollectionMismatchError`) a collection built with another model,
    dimension or backend, or from another corpus unless ``allow_other_corpus``; ``recreate`` rebuilds it instead.
    ``sync`` deletes the points whose documents are not in ``corpus``, and is refused for a collection that
    records other corpora (it would delete theirs).
    """
    from mpretriever.index.collection import (
        CollectionMismatchError,
        collection_manifest,
        ensure_collection,
        recorded_corpora,
    )
    from mpretriever.index.indexer import index_corpus

    client = settings.connect()
    try:
        if sync and not recreate and client.collection_exists(collection):
            corpora = recorded_corpora(client, collection)
            others = [name for name in corpora if name != corpus_name]
            if others and (corpus_name in corpora or allow_other_corpus):  # else refused below as another corpus
                raise CollectionMismatchError(
                    f"collection '{collection}' also holds corpus {', '.join(others)}: --sync would delete its "
                    "points; index without --sync, or re-index with --recreate"
                )
        created = ensure_collection(
            client,
            collection,
            collection_manifest(encoder, model_name),
            recreate=recreate,
            corpus=corpus_name,
            allow_other_corpus=allow_other_corpus,
        )
        stats = index_corpus(
            encoder,
            corpus,
            client,
            collection,
            batch_size=batch_size,
            workers=workers,
            console=console,
            show_progress=show_progress,
            sync=sync,
        )
    finally:
        client.close()
    return IndexOutcome(collection=collection, location=settings.location, created=created, stats=stats)
