"""Qdrant collections in the layout qdrant-haystack's ``QdrantDocumentStore`` reads, with the model manifest.

Points: id ``convert_id(document id)`` (qdrant-haystack's deterministic UUID), one unnamed dense vector, payload
``Document.to_dict(flatten=False)`` without the embedding, plus ``content_fingerprint`` (a digest of the title and
text that were embedded; qdrant-haystack reads it as one more ``meta`` field). The collection's metadata holds,
under ``"mpretriever"``, what is needed to embed queries the same way (the model, its fingerprint, dimension,
similarity and prefixes), the backend that encoded the passages and the corpora indexed into it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from haystack import Document
from haystack_integrations.document_stores.qdrant.converters import convert_id
from qdrant_client import QdrantClient, models

from mpretriever.index.layout import layout_differs, recorded_layout
from mpretriever.model.bi_encoder import BiEncoder

logger = logging.getLogger(__name__)

METADATA_KEY = "mpretriever"
CORPORA_KEY = "corpora"
FINGERPRINT_FIELD = "content_fingerprint"
DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}


class CollectionMismatchError(ValueError):
    """The collection was built with another model (or dimension, or backend), or from another corpus, than the
    one in use."""


def point_id(doc_id: str) -> str:
    return convert_id(doc_id)


def content_fingerprint(title: str, text: str) -> str:
    """A digest of what a passage's embedding depends on in the corpus: its title and its text."""
    digest = hashlib.sha256()
    for value in (title, text):
        encoded = value.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()[:32]


def collection_manifest(model: BiEncoder, model_name: str) -> dict[str, Any]:
    """What the collection records about the model that filled it."""
    config = model.config
    return {
        "model": model_name,
        "base_model": model.base_model,
        "fingerprint": model.fingerprint(),
        "dimension": model.dimension,
        "similarity": config.similarity,
        "pooling": config.pooling,
        "normalize": config.normalize,
        "query_prefix": config.query_prefix,
        "passage_prefix": config.passage_prefix,
        "query_max_length": config.query_max_length,
        "passage_max_length": config.passage_max_length,
        "backend": model.backend,
    }


def read_manifest(client: QdrantClient, collection: str) -> dict[str, Any] | None:
    metadata = client.get_collection(collection).config.metadata or {}
    manifest = metadata.get(METADATA_KEY)
    return manifest if isinstance(manifest, dict) else None


def vector_size(client: QdrantClient, collection: str) -> int | None:
    vectors = client.get_collection(collection).config.params.vectors
    return vectors.size if isinstance(vectors, models.VectorParams) else None


def check_compatible(client: QdrantClient, collection: str, expected: dict[str, Any]) -> None:
    """Raise :class:`CollectionMismatchError` when the collection was filled by another model or dimension.

    A collection without a manifest (e.g. written by a plain Haystack indexing pipeline) is only checked for its
    dimension, with a warning.
    """
    size = vector_size(client, collection)
    if size is not None and size != expected["dimension"]:
        raise CollectionMismatchError(
            f"collection '{collection}' holds {size}-d vectors but the model {expected['model']} gives "
            f"{expected['dimension']}-d embeddings"
        )
    stored = read_manifest(client, collection)
    if stored is None:
        logger.warning("collection '%s' has no mpretriever manifest: cannot check which model filled it", collection)
        return
    if stored.get("fingerprint") != expected["fingerprint"]:
        raise CollectionMismatchError(
            f"collection '{collection}' was indexed with model {stored.get('model')} "
            f"(fingerprint {stored.get('fingerprint')}), not {expected['model']} "
            f"(fingerprint {expected['fingerprint']}); use the same model, or index behind an alias "
            "(--alias NAME), which builds a new collection aside"
        )
    # the passage length is the index's; the query length is each search's choice (see search_lengths)
    settings = ("similarity", "query_prefix", "passage_max_length")
    differing = [key for key in settings if stored.get(key) != expected[key]]
    if differing:
        raise CollectionMismatchError(
            f"collection '{collection}' was indexed with different settings for {', '.join(differing)}: "
            f"{ {key: stored.get(key) for key in differing} }; use the same settings, or index behind an alias "
            "(--alias NAME)"
        )


def search_lengths(stored: dict[str, Any] | None, query_max_length: int | None = None) -> dict[str, int | None]:
    """The lengths of an encoder that searches a collection whose manifest is ``stored``: the passage length the
    collection was indexed with, and ``query_max_length`` or else the query length the collection records
    (``None``: the model's maximum)."""
    stored = stored or {}
    return {
        "query_max_length": query_max_length or stored.get("query_max_length"),
        "passage_max_length": stored.get("passage_max_length"),
    }


def recorded_corpora(client: QdrantClient, collection: str) -> list[str]:
    """The corpora indexed into the collection, as its manifest records them (none for older collections)."""
    return list((read_manifest(client, collection) or {}).get(CORPORA_KEY) or [])


def check_writable(
    client: QdrantClient, collection: str, expected: dict[str, Any], corpus: str | None, allow_other_corpus: bool
) -> None:
    """What :func:`check_compatible` checks for searching, and what writing more vectors into the collection also
    needs: the same backend (an int8 and a float32 encoding of one model are different vectors), the layout
    ``expected`` asks for if any, and, unless ``allow_other_corpus``, the corpus that filled it."""
    check_compatible(client, collection, expected)
    stored = read_manifest(client, collection)
    if stored is None:
        return
    stored_backend = stored.get("backend", "torch")
    if stored_backend != expected["backend"]:
        raise CollectionMismatchError(
            f"collection '{collection}' was encoded with the {stored_backend} backend, not {expected['backend']}: "
            f"index with --backend {stored_backend}, or behind an alias (--alias NAME)"
        )
    if layout_differs(stored, expected):
        raise CollectionMismatchError(
            f"collection '{collection}' was created with {recorded_layout(stored).describe()}, not "
            f"{recorded_layout(expected).describe()}; a layout applies when a collection is created: index behind "
            "an alias (--alias NAME) to build one with it"
        )
    corpora = stored.get(CORPORA_KEY) or []
    if corpus is not None and corpora and corpus not in corpora and not allow_other_corpus:
        raise CollectionMismatchError(
            f"collection '{collection}' holds corpus {', '.join(corpora)}, not {corpus}: choose another "
            "--collection, pass --allow-other-corpus to merge both into it, or index behind an alias (--alias NAME)"
        )


def ensure_collection(
    client: QdrantClient,
    collection: str,
    manifest: dict[str, Any],
    recreate: bool = False,
    corpus: str | None = None,
    allow_other_corpus: bool = False,
) -> bool:
    """Create the collection for ``manifest``, in the layout it records (:mod:`mpretriever.index.layout`), or check,
    with :func:`check_writable`, that the existing one may take more of ``corpus``'s vectors. ``corpus`` names the
    corpus to index; the manifest records it. Returns True when the collection was created."""
    exists = client.collection_exists(collection)
    if exists and not recreate:
        check_writable(client, collection, manifest, corpus, allow_other_corpus)
        stored = read_manifest(client, collection)
        corpora = list((stored or {}).get(CORPORA_KEY) or [])
        if stored is not None and corpus is not None and corpus not in corpora:
            client.update_collection(collection, metadata={METADATA_KEY: {**stored, CORPORA_KEY: [*corpora, corpus]}})
        return False
    if exists:
        client.delete_collection(collection)
    layout = recorded_layout(manifest)
    client.create_collection(
        collection,
        **layout.create_arguments(manifest["dimension"], DISTANCES[manifest["similarity"]]),
        metadata={METADATA_KEY: {**manifest, CORPORA_KEY: [corpus] if corpus is not None else []}},
    )
    return True


def document_payload(doc_id: str, title: str, text: str) -> dict[str, Any]:
    """The payload qdrant-haystack stores for a Haystack ``Document`` (without its embedding), and the content
    fingerprint that tells the indexer whether the stored vector is still the passage's."""
    meta = {"title": title} if title else {}
    payload = Document(id=doc_id, content=text, meta=meta).to_dict(flatten=False)
    payload.pop("embedding", None)
    payload[FINGERPRINT_FIELD] = content_fingerprint(title, text)
    return payload
