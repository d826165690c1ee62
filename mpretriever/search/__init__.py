"""Search shared by evaluation and mining: exact top-k over corpus embeddings, cached corpus embeddings, and
the ranked hits both produce.

Names are imported lazily, so ``mpretriever.search.ranking`` loads without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
