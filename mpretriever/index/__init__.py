"""Qdrant indexing: connection settings, the collection layout with its model manifest, the indexer."""

from mpretriever.index.collection import (
    CollectionMismatchError,
    check_compatible,
    collection_manifest,
    ensure_collection,
    point_id,
    read_manifest,
)
from mpretriever.index.connection import QdrantSettings, QdrantUnavailableError
from mpretriever.index.indexer import IndexStats, index_corpus

__all__ = [
    "CollectionMismatchError",
    "IndexStats",
    "QdrantSettings",
    "QdrantUnavailableError",
    "check_compatible",
    "collection_manifest",
    "ensure_collection",
    "index_corpus",
    "point_id",
    "read_manifest",
]
