"""Corpus embeddings: encoding a whole corpus, and a disk cache so that a corpus is encoded once per model.

Encoding a corpus is the slow part of exact search on CPUs (NFCorpus, 3,633 passages: about 100 s with MiniLM on
two cores), and evaluations repeat it for every model and setting. :class:`EmbeddingCache` keeps each embedding
matrix under ``$MPR_CACHE_DIR/embeddings/`` keyed by everything that determines it: the model fingerprint (weights
and encoder settings), the inference backend, the passage prefix and length, and a digest of the corpus content
(ids, titles and texts, in order). Files are written to a temporary sibling and renamed into place, so a reader
never sees half a matrix and concurrent writers do not clash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from mpretriever.cache import cache_dir
from mpretriever.data.beir import passage_texts
from mpretriever.files import atomic_file
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.model.encoding_pool import cpu_pool, default_workers

logger = logging.getLogger(__name__)

ENCODE_CHUNK = 4096
HASH_CHUNK = 10_000
CACHE_FORMAT = 1


def encode_corpus(
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    batch_size: int = 64,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    chunk_size: int = ENCODE_CHUNK,
) -> torch.Tensor:
    """Embeddings ``(len(corpus), dimension)`` of every passage (``title + " " + text``), in corpus order.

    Passages go through :meth:`BiEncoder.encode` (sentence-transformers' ``encode_document``: the run's
    document prompt and the encoder's passage length; how many passages were cut is logged once), in chunks of
    ``chunk_size``; ``on_progress(n)`` is called after each chunk of ``n`` passages. ``workers=None`` picks
    sentence-transformers' multi-process pool on CPU-only machines for large corpora, as ``mpr index`` does.
    """
    if len(corpus) == 0:
        raise ValueError("cannot encode an empty corpus")
    workers = default_workers(len(corpus), encoder.backend) if workers is None else workers
    parts: list[torch.Tensor] = []
    with cpu_pool(encoder, workers) as pool, encoder.counting_truncation("passage"):
        for start in range(0, len(corpus), chunk_size):
            chunk = corpus[start : start + chunk_size]
            texts = passage_texts(chunk)
            embeddings = encoder.encode(
                texts, "passage", batch_size=batch_size, pool=pool, convert_to_tensor=True, show_progress_bar=False
            )
            parts.append(embeddings.detach())
            if on_progress is not None:
                on_progress(len(texts))
    return torch.cat([part.to(parts[0].device) for part in parts])


def corpus_digest(corpus: datasets.Dataset) -> str:
    """A digest of the ids, titles and texts of ``corpus`` in order: equal for the same content wherever it was
    loaded from, different after any edit, reordering, addition or removal."""
    digest = hashlib.sha256()
    for start in range(0, len(corpus), HASH_CHUNK):
        chunk = corpus[start : start + HASH_CHUNK]
        for doc_id, title, text in zip(chunk["_id"], chunk["title"], chunk["text"], strict=True):
            for value in (doc_id, title, text):
                encoded = value.encode("utf-8")
                digest.update(len(encoded).to_bytes(8, "little"))
                digest.update(encoded)
    return digest.hexdigest()[:32]


class EmbeddingCache:
    """Corpus embedding matrices on disk (``<directory>/<key>.npy`` with a ``<key>.json`` description).

    ``directory`` defaults to ``$MPR_CACHE_DIR/embeddings``. :attr:`hits` and :attr:`misses` count the look-ups
    of this instance.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir("embeddings")
        self.hits = 0
        self.misses = 0

    @staticmethod
    def describe(encoder: BiEncoder, corpus: datasets.Dataset) -> dict[str, Any]:
        """Everything the embeddings of ``corpus`` under ``encoder`` depend on (hashed into the key)."""
        return {
            "format": CACHE_FORMAT,
            "model_fingerprint": encoder.fingerprint(),
            "backend": encoder.backend,
            "passage_prefix": encoder.config.passage_prefix,
            "passage_max_length": encoder.config.passage_max_length,
            "corpus_digest": corpus_digest(corpus),
            "documents": len(corpus),
        }

    @staticmethod
    def key(description: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npy"

    def load(self, key: str, rows: int) -> torch.Tensor | None:
        """The cached matrix of ``key``, or ``None`` when there is none (or it is unreadable or of another
        size, which is logged and treated as absent)."""
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            logger.warning("ignoring unreadable cached embeddings %s: %s", path, error)
            self.misses += 1
            return None
        if matrix.ndim != 2 or matrix.shape[0] != rows:
            logger.warning("ignoring cached embeddings %s: shape %s, expected %d rows", path, matrix.shape, rows)
            self.misses += 1
            return None
        self.hits += 1
        return torch.from_numpy(matrix)

    def save(self, key: str, embeddings: torch.Tensor, description: dict[str, Any]) -> Path:
        """Store ``embeddings`` (as float32) under ``key`` atomically; return the file."""
        path = self.path(key)
        matrix = embeddings.detach().float().cpu().numpy()
        with atomic_file(path, "wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
        info = {**description, "shape": list(matrix.shape), "created_at": _now()}
        with atomic_file(path.with_suffix(".json")) as handle:
            handle.write(json.dumps(info, indent=2) + "\n")
        return path

    def take(self, source: EmbeddingCache, key: str) -> bool:
        """Move the matrix of ``key`` (and its description) from ``source`` into this cache, replacing any there;
        ``False`` when ``source`` does not hold it. Both caches should be on one file system (a rename)."""
        matrix = source.path(key)
        if not matrix.is_file():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        description = matrix.with_suffix(".json")
        if description.is_file():
            os.replace(description, self.path(key).with_suffix(".json"))
        os.replace(matrix, self.path(key))
        return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def corpus_embeddings(
    encoder: BiEncoder,
    corpus: datasets.Dataset,
    batch_size: int = 64,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    cache: EmbeddingCache | None = None,
    chunk_size: int = ENCODE_CHUNK,
) -> torch.Tensor:
    """The embeddings of ``corpus`` under ``encoder``: read from ``cache`` when it holds them, else encoded
    with :func:`encode_corpus` (and stored in ``cache``). Without a cache, always encoded."""
    if cache is None:
        return encode_corpus(encoder, corpus, batch_size, workers, on_progress, chunk_size)
    description = EmbeddingCache.describe(encoder, corpus)
    key = EmbeddingCache.key(description)
    cached = cache.load(key, len(corpus))
    if cached is not None:
        logger.info("corpus embeddings read from the cache (%s)", cache.path(key))
        if on_progress is not None:
            on_progress(len(corpus))
        return cached.to(encoder.device)
    embeddings = encode_corpus(encoder, corpus, batch_size, workers, on_progress, chunk_size)
    cache.save(key, embeddings, description)
    return embeddings
