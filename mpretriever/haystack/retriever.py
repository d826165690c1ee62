"""``MPRetriever``: query text in, ranked Haystack ``Document``s out, from an mpretriever Qdrant collection."""

from __future__ import annotations

import logging
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import Secret, deserialize_secrets_inplace
from haystack_integrations.document_stores.qdrant.converters import convert_qdrant_point_to_haystack_document
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from qdrant_client import QdrantClient, models

from mpretriever.index.collection import (
    FINGERPRINT_FIELD,
    check_compatible,
    collection_manifest,
    read_manifest,
    search_lengths,
)
from mpretriever.index.connection import DEFAULT_API_KEY_ENV, DEFAULT_QDRANT_PATH, DEFAULT_TIMEOUT_S, QdrantSettings
from mpretriever.model.backends import Backend
from mpretriever.model.bi_encoder import BiEncoder

logger = logging.getLogger(__name__)


@component
class MPRetriever:
    """Embeds the query with an mpretriever model and searches a Qdrant collection.

    The collection records which model filled it (see ``mpr index``): with ``model=None`` that model is used, and
    with an explicit ``model`` the retriever refuses to run against a collection built with another one.

    Usage:
    ```python
    retriever = MPRetriever(collection="nfcorpus", qdrant_path="qdrant_data", top_k=5)
    retriever.warm_up()
    documents = retriever.run(query="vitamin D and breast cancer")["documents"]
    ```
    """

    def __init__(
        self,
        *,
        collection: str,
        model: str | None = None,
        qdrant_path: str | None = DEFAULT_QDRANT_PATH,
        qdrant_url: str | None = None,
        api_key: Secret | None = Secret.from_env_var(DEFAULT_API_KEY_ENV, strict=False),
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        device: str | None = None,
        backend: Backend = "torch",
        check_model: bool = True,
        timeout: int = DEFAULT_TIMEOUT_S,
        query_max_length: int | None = None,
    ) -> None:
        """
        :param collection: the Qdrant collection to search.
        :param model: an mpretriever run, a sentence-transformers model or a hub id; ``None`` uses the model the
            collection was indexed with.
        :param qdrant_path: directory of an embedded (local) Qdrant; ignored when ``qdrant_url`` is set.
        :param qdrant_url: URL of a Qdrant server.
        :param api_key: API key of the Qdrant server, as a ``Secret`` (never serialised in clear).
        :param top_k: number of documents to return.
        :param filters: Haystack metadata filters applied to every query (a run's ``filters`` replace them).
        :param device: torch device of the encoder (default: automatic).
        :param backend: inference engine for the query encoder: ``"torch"``, or on CPUs ``"onnx"`` (float32) or
            ``"onnx-int8"`` (quantised, faster); see :mod:`mpretriever.model.onnx_backend`.
        :param check_model: refuse to search a collection indexed with another model.
        :param timeout: seconds to wait for Qdrant.
        :param query_max_length: tokens a query is cut to; ``None`` uses the query length the collection records
            (``mpr index --query-max-length``, by default the model's maximum sequence length), or the model's
            maximum for a collection that records none. How many queries were cut is logged.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        if query_max_length is not None and query_max_length < 1:
            raise ValueError(f"query_max_length must be positive, got {query_max_length}")
        self.collection = collection
        self.model = model
        self.qdrant_path = qdrant_path
        self.qdrant_url = qdrant_url
        self.api_key = api_key
        self.top_k = top_k
        self.filters = filters
        self.device = device
        self.backend = backend
        self.check_model = check_model
        self.timeout = timeout
        self.query_max_length = query_max_length
        self._client: QdrantClient | None = None
        self._encoder: BiEncoder | None = None
        self._encoder_name: str | None = None

    @property
    def client(self) -> QdrantClient | None:
        """The retriever's Qdrant connection once warmed up (``None`` before): share it rather than opening a
        second one, which an embedded Qdrant directory refuses."""
        return self._client

    @property
    def encoder(self) -> BiEncoder | None:
        """The query encoder once warmed up (``None`` before)."""
        return self._encoder

    def warm_up(self) -> None:
        """Connect to Qdrant, load the encoder and check it against the collection. Idempotent; after
        :meth:`disconnect` it reconnects and keeps the encoder unless the collection now records another model."""
        if self._client is not None and self._encoder is not None:
            return
        settings = QdrantSettings(
            path=self.qdrant_path,
            url=self.qdrant_url,
            api_key=self.api_key.resolve_value() if self.api_key else None,
            timeout=self.timeout,
        )
        client = settings.connect(must_exist=True)
        try:
            if not client.collection_exists(self.collection):
                raise ValueError(f"collection '{self.collection}' does not exist in {settings.location}")
            stored = read_manifest(client, self.collection)
            model_name = self.model or (stored or {}).get("model")
            if model_name is None:
                raise ValueError(
                    f"collection '{self.collection}' records no model (not indexed by mpr index): pass model="
                )
            encoder = self._encoder
            if encoder is None or self._encoder_name != model_name:
                encoder = BiEncoder.from_pretrained(
                    model_name,
                    device=self.device,
                    backend=self.backend,
                    **search_lengths(stored, self.query_max_length),
                )
                self._encoder, self._encoder_name = encoder, model_name
            if self.check_model:
                check_compatible(client, self.collection, collection_manifest(encoder, model_name))
        except Exception:
            client.close()
            raise
        self._client, self._encoder = client, encoder

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        :param query: the query text.
        :param top_k: overrides the init ``top_k``.
        :param filters: overrides the init ``filters``.
        :returns: ``documents``, best first, each with its ``score``.
        """
        if self._client is None or self._encoder is None:
            self.warm_up()
        assert self._client is not None and self._encoder is not None
        limit = top_k if top_k is not None else self.top_k
        if limit < 1:
            raise ValueError(f"top_k must be positive, got {limit}")
        vector = self._encoder.embed_texts([query], "query")[0].float().cpu().tolist()
        response = self._client.query_points(
            self.collection,
            query=vector,
            query_filter=convert_filters_to_qdrant(filters if filters is not None else self.filters),
            limit=limit,
            with_payload=models.PayloadSelectorExclude(exclude=[FINGERPRINT_FIELD]),  # the indexer's own
            with_vectors=False,
        )
        documents = [convert_qdrant_point_to_haystack_document(p, use_sparse_embeddings=False) for p in response.points]
        return {"documents": documents}

    def disconnect(self) -> None:
        """Release the Qdrant client (and the lock on a local Qdrant directory) but keep the encoder, so that
        reconnecting does not load the model again."""
        if self._client is not None:
            self._client.close()
        self._client = None

    def close(self) -> None:
        """Release the Qdrant client and the encoder."""
        self.disconnect()
        self._encoder = None

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            collection=self.collection,
            model=self.model,
            qdrant_path=self.qdrant_path,
            qdrant_url=self.qdrant_url,
            api_key=self.api_key,
            top_k=self.top_k,
            filters=self.filters,
            device=self.device,
            backend=self.backend,
            check_model=self.check_model,
            timeout=self.timeout,
            query_max_length=self.query_max_length,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MPRetriever:
        deserialize_secrets_inplace(data.get("init_parameters", {}), keys=["api_key"])
        return default_from_dict(cls, data)
