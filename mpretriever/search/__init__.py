"""Search shared by evaluation and mining: exact top-k over corpus embeddings, cached corpus embeddings, and
the ranked hits both produce.

Names are imported lazily, so ``mpretriever.search.ranking`` loads without torch.
"""

from __future__ import annotations

from mpretriever.lazy import lazy_exports

_EXPORTS = {
    "EmbeddingCache": "mpretriever.search.embeddings",
    "corpus_digest": "mpretriever.search.embeddings",
    "corpus_embeddings": "mpretriever.search.embeddings",
    "encode_corpus": "mpretriever.search.embeddings",
    "ExactIndex": "mpretriever.search.exact",
    "Hit": "mpretriever.search.ranking",
    "trec_order": "mpretriever.search.ranking",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
