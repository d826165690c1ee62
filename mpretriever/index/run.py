"""Indexing a dataset's corpus into a collection, as ``mpr index`` and the demo's ``init`` service do: connect,
create or check the collection (model, backend, corpus), write what is missing or changed, report.

Only the standard library is imported at module level, so the command line can import :func:`model_reference`
without loading torch or Haystack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets
    from qdrant_client import QdrantClient
    from rich.console import Console

    from mpretriever.index.connection import QdrantSettings
    from mpretriever.index.indexer import IndexStats
    from mpretriever.index.layout import CollectionLayout
    from mpretriever.model.bi_encoder import BiEncoder
    from mpretriever.search.embeddings import EmbeddingCache

logger = logging.getLogger(__name__)


def model_reference(model: str | None) -> str:
    """How the collection records the model: an absolute path for local directories, else the name given."""
    from mpretriever.model.bi_encoder import DEFAULT_MODEL_NAME

    if model is None:
        return DEFAULT_MODEL_NAME
    return str(Path(model).resolve()) if Path(model).exists() else model


class IncompleteIndexError(ValueError):
    """A version built for an alias does not hold the whole corpus after indexing: the alias was not moved."""


@dataclass(frozen=True)
class IndexOutcome:
    """Where a corpus was indexed and what the run did; with an alias, the version written and the collection
    the alias pointed at before (``previous``)."""

    collection: str
    location: str
    created: bool
    stats: IndexStats
    alias: str | None = None
    previous: str | None = None

    @property
    def changed_anything(self) -> bool:
        return self.created or self.stats.written > 0 or self.stats.deleted > 0

    @property
    def switched(self) -> bool:
        """Whether the run moved the alias."""
        return self.alias is not None and self.previous != self.collection

    def summary(self) -> str:
        """One line: the counts, then what was re-embedded or deleted, any points outside the corpus, and where the
        alias points."""
        stats = self.stats
        line = (
            f"{'created' if self.created else 'updated'} collection '{self.collection}' in {self.location}: "
            f"{stats.written} written, {stats.already_present} already present, "
            f"{stats.points_in_collection} points in the collection"
        )
        if stats.updated:
            line += f"; {stats.updated} of the written re-embedded because their title or text changed"
        if stats.written and stats.from_cache:
            line += "; vectors read from the embedding cache, not encoded"
        if stats.deleted:
            line += f"; {stats.deleted} points whose documents left the corpus deleted"
        if stats.stale:
            line += (
                f"; {stats.stale} points are not in this corpus (documents removed from it, or another corpus "
                "merged in): --sync deletes them"
            )
        if self.alias is not None and self.switched:
            before = f"'{self.previous}'" if self.previous else "nothing"
            line += f"; alias '{self.alias}' now serves it (it served {before}"
            line += f"; mpr collections rollback {self.alias} goes back)" if self.previous else ")"
        elif self.alias is not None:
            line += f"; alias '{self.alias}' serves it"
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
    alias: bool = False,
    layout: CollectionLayout | None = None,
    cache: EmbeddingCache | None = None,
) -> IndexOutcome:
    """Index ``corpus`` (named ``corpus_name`` in the collection's manifest) into ``collection``.

    With ``alias``, ``collection`` names an alias: the corpus goes into a version of it
    (:func:`~mpretriever.index.versions.choose_version`), which must then hold the whole corpus, and the alias
    moves to it atomically; ``recreate`` builds a new version aside. Without ``alias``, ``recreate`` is refused for
    an existing collection: emptying it would leave its readers with a partial index.

    ``layout`` (shards, replicas, on-disk vectors, HNSW, quantisation) applies to a collection the run creates, and
    its manifest records it; a collection built with another layout than the one asked for is refused, or with
    ``alias``, replaced by a new version built with it. An embedded Qdrant ignores the layout.

    ``cache``: an :class:`~mpretriever.search.embeddings.EmbeddingCache` to read the corpus's vectors from when it
    holds them for this encoder (one process only; shards launched with torchrun encode their own).

    Refuses (:class:`~mpretriever.index.collection.CollectionMismatchError`) a collection built with another model,
    dimension or backend, or from another corpus unless ``allow_other_corpus``. ``sync`` deletes the points whose
    documents are not in ``corpus``, and is refused for a collection that records other corpora (it would delete
    theirs).
    """
    from mpretriever.index.indexer import index_corpus
    from mpretriever.index.sharded import index_sharded, launched_group

    if layout is not None and not layout.is_default() and not settings.url:
        logger.warning("an embedded Qdrant ignores the layout (%s); the manifest records it", layout.describe())
    request = IndexRequest(
        collection=collection,
        corpus_name=corpus_name,
        model_name=model_name,
        alias=alias,
        recreate=recreate,
        sync=sync,
        allow_other_corpus=allow_other_corpus,
        layout=layout,
    )
    with launched_group() as group:
        if group is not None:
            return index_sharded(group, request, encoder, corpus, settings, batch_size, console, show_progress)
    client = settings.connect()
    try:
        target, created = prepare_collection(client, encoder, request)
        stats = index_corpus(
            encoder,
            corpus,
            client,
            target,
            batch_size=batch_size,
            workers=workers,
            console=console,
            show_progress=show_progress,
            sync=sync,
            cache=cache,
        )
        previous = complete_collection(client, target, corpus, request)
    finally:
        client.close()
    return request.outcome(target, settings.location, created, stats, previous)


@dataclass(frozen=True)
class IndexRequest:
    """What an indexing run was asked to do, as :func:`index_dataset` takes it."""

    collection: str  # the collection, or with ``alias`` the alias
    corpus_name: str
    model_name: str
    alias: bool = False
    recreate: bool = False
    sync: bool = False
    allow_other_corpus: bool = False
    layout: CollectionLayout | None = None

    def outcome(
        self, target: str, location: str, created: bool, stats: IndexStats, previous: str | None
    ) -> IndexOutcome:
        alias = self.collection if self.alias else None
        return IndexOutcome(target, location, created, stats, alias=alias, previous=previous)


def prepare_collection(client: QdrantClient, encoder: BiEncoder, request: IndexRequest) -> tuple[str, bool]:
    """The collection to write into (a version of the alias, or the collection), created or checked as
    :func:`index_dataset` describes; returns its name and whether it was created."""
    from mpretriever.index.collection import (
        CollectionMismatchError,
        collection_manifest,
        ensure_collection,
        recorded_corpora,
    )
    from mpretriever.index.layout import with_layout
    from mpretriever.index.versions import choose_version, version_manifest

    collection, corpus_name = request.collection, request.corpus_name
    manifest = collection_manifest(encoder, request.model_name)
    if request.layout is not None:
        manifest = with_layout(manifest, request.layout)
    target = collection
    if request.alias:
        target = choose_version(client, collection, manifest, rebuild=request.recreate)
        if not client.collection_exists(target):
            manifest = version_manifest(manifest, collection)
    elif request.recreate and client.collection_exists(collection):
        raise CollectionMismatchError(
            f"--recreate would empty collection '{collection}' while it may be searched; index with --alias "
            f"NAME to build a new collection aside and switch to it, or delete '{collection}' first "
            "(mpr collections delete)"
        )
    if request.sync and client.collection_exists(target):
        corpora = recorded_corpora(client, target)
        others = [name for name in corpora if name != corpus_name]
        if others and (corpus_name in corpora or request.allow_other_corpus):  # else refused as another corpus
            raise CollectionMismatchError(
                f"collection '{target}' also holds corpus {', '.join(others)}: --sync would delete its "
                "points; index without --sync, or into a new collection"
            )
    created = ensure_collection(
        client, target, manifest, corpus=corpus_name, allow_other_corpus=request.allow_other_corpus
    )
    return target, created


def complete_collection(
    client: QdrantClient, target: str, corpus: datasets.Dataset, request: IndexRequest
) -> str | None:
    """With an alias: check that ``target`` holds the whole corpus, then point the alias at it; returns the
    collection the alias pointed at before (``None`` without an alias, or when it pointed at nothing)."""
    from mpretriever.index.indexer import outdated_documents
    from mpretriever.index.versions import alias_target, switch_alias

    if not request.alias:
        return None
    outdated = outdated_documents(client, target, corpus)
    if outdated:
        raise IncompleteIndexError(
            f"collection '{target}' lacks {outdated} of the corpus's {len(corpus)} passages (or holds them "
            f"with another text) after indexing; alias '{request.collection}' still serves "
            f"'{alias_target(client, request.collection)}'. Run mpr index again to complete it"
        )
    return switch_alias(client, request.collection, target)
