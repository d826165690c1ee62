"""Qdrant indexing: connection settings, the collection layout with its model manifest, the indexer.

Names are imported lazily, so ``mpretriever.index.connection`` (whose defaults the CLI's options show) loads
without Haystack, qdrant-client or torch.
"""

from __future__ import annotations

from mpretriever.lazy import lazy_exports

_EXPORTS = {
    "CollectionMismatchError": "mpretriever.index.collection",
    "check_compatible": "mpretriever.index.collection",
    "collection_manifest": "mpretriever.index.collection",
    "ensure_collection": "mpretriever.index.collection",
    "point_id": "mpretriever.index.collection",
    "recorded_corpora": "mpretriever.index.collection",
    "read_manifest": "mpretriever.index.collection",
    "QdrantSettings": "mpretriever.index.connection",
    "QdrantUnavailableError": "mpretriever.index.connection",
    "CollectionLayout": "mpretriever.index.layout",
    "IndexStats": "mpretriever.index.indexer",
    "index_corpus": "mpretriever.index.indexer",
    "IndexOutcome": "mpretriever.index.run",
    "index_dataset": "mpretriever.index.run",
    "model_reference": "mpretriever.index.run",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
