"""``MPRetriever``: query text in, ranked Haystack ``Document``s out, from an mpretriever Qdrant collection."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
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
from mpretriever.index.versions import alias_target
from mpretriever.model.backends import Backend
from mpretriever.model.bi_encoder import BiEncoder

logger = logging.getLogger(__name__)

DEFAULT_FOLLOW_ALIAS_S = 1.0
ENCODERS_KEPT = 2  # the served model and the one before it, so that a rollback needs no reload


@dataclass(frozen=True)
class _Served:
    """The collection searched (an alias resolved) and the encoder its manifest names: replaced as one value, so
    that a query is always embedded by the model that filled the collection it searches."""

    collection: str
    encoder: BiEncoder
    model_name: str


@component
class MPRetriever:
    """Embeds the query with an mpretriever model and searches a Qdrant collection.

    The collection records which model filled it (see ``mpr index``): with ``model=None`` that model is used, and
    with an explicit ``model`` the retriever refuses to run against a collection built with another one.

    ``collection`` may be an alias (``mpr index --alias``). The retriever then searches the collection the alias
    points at, with the model that collection records, and checks at most every ``follow_alias_s`` seconds where
    the alias points: after a switch (a retrained model, or ``mpr collections rollback``) it loads the new model
    and moves to the new collection in one step, so no query is embedded by one model and searched among another
    one's vectors. Queries that arrive while the new model loads are answered from the old collection.

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
        follow_alias_s: float | None = DEFAULT_FOLLOW_ALIAS_S,
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
        :param follow_alias_s: seconds between two checks of which collection ``collection`` (an alias) points
            at; ``0`` checks before every query, ``None`` resolves it once, at :meth:`warm_up`.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        if query_max_length is not None and query_max_length < 1:
            raise ValueError(f"query_max_length must be positive, got {query_max_length}")
        if follow_alias_s is not None and follow_alias_s < 0:
            raise ValueError(f"follow_alias_s must be at least 0, got {follow_alias_s}")
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
        self.follow_alias_s = follow_alias_s
        self._client: QdrantClient | None = None
        self._served: _Served | None = None
        self._encoders: dict[tuple[str, int | None, int | None], BiEncoder] = {}
        self._checked_at = 0.0
        self._refreshing = threading.Lock()
        self._refused_target: str | None = None

    @property
    def client(self) -> QdrantClient | None:
        """The retriever's Qdrant connection once warmed up (``None`` before): share it rather than opening a
        second one, which an embedded Qdrant directory refuses."""
        return self._client

    @property
    def encoder(self) -> BiEncoder | None:
        """The query encoder of the collection searched now, once warmed up (``None`` before)."""
        return self._served.encoder if self._served is not None else None

    @property
    def served_collection(self) -> str | None:
        """The collection searched now: ``collection`` itself, or the one the alias ``collection`` points at."""
        return self._served.collection if self._served is not None else None

    def warm_up(self) -> None:
        """Connect to Qdrant, load the encoder and check it against the collection. Idempotent; after
        :meth:`disconnect` it reconnects and keeps the encoder unless the collection now records another model."""
        if self._client is not None and self._served is not None:
            return
        settings = QdrantSettings(
            path=self.qdrant_path,
            url=self.qdrant_url,
            api_key=self.api_key.resolve_value() if self.api_key else None,
            timeout=self.timeout,
        )
        client = settings.connect(must_exist=True)
        try:
            target = self._resolve(client)
            if target is None:
                raise ValueError(f"collection '{self.collection}' does not exist in {settings.location}")
            served = self._serve(client, target)
        except Exception:
            client.close()
            raise
        self._client, self._served, self._checked_at = client, served, time.monotonic()

    def _resolve(self, client: QdrantClient) -> str | None:
        """The collection ``collection`` names: the one the alias points at, or itself; ``None`` if neither."""
        target = alias_target(client, self.collection)
        if target is not None:
            return target
        return self.collection if client.collection_exists(self.collection) else None

    def _serve(self, client: QdrantClient, target: str) -> _Served:
        """``target`` with the encoder its manifest names (loaded unless kept from before), checked against it."""
        stored = read_manifest(client, target)
        model_name = self.model or (stored or {}).get("model")
        if model_name is None:
            raise ValueError(f"collection '{target}' records no model (not indexed by mpr index): pass model=")
        lengths = search_lengths(stored, self.query_max_length)
        key = (model_name, lengths["query_max_length"], lengths["passage_max_length"])
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = BiEncoder.from_pretrained(model_name, device=self.device, backend=self.backend, **lengths)
        if self.check_model:
            check_compatible(client, target, collection_manifest(encoder, model_name))
        self._encoders.pop(key, None)
        self._encoders[key] = encoder  # the most recently served last
        while len(self._encoders) > ENCODERS_KEPT:
            del self._encoders[next(iter(self._encoders))]
        return _Served(collection=target, encoder=encoder, model_name=model_name)

    def _follow(self, client: QdrantClient, force: bool = False) -> _Served:
        """The collection to search now: after ``follow_alias_s`` (or when ``force``d), where the alias points.
        One thread checks and, after a switch, loads the new model; the others search the current collection."""
        served = self._served
        assert served is not None
        due = self.follow_alias_s is not None and time.monotonic() - self._checked_at >= self.follow_alias_s
        if not (due or force) or not self._refreshing.acquire(blocking=force):
            return served
        try:
            served = self._served
            assert served is not None
            self._checked_at = time.monotonic()
            target = self._resolve(client)
            if target is None or target == served.collection or target == self._refused_target:
                return served
            try:
                self._served = self._serve(client, target)
            except (ValueError, OSError) as error:  # another model than model=, or one that cannot be loaded
                logger.error(
                    "alias '%s' moved to '%s', which this retriever cannot search: %s; still searching '%s'",
                    self.collection,
                    target,
                    error,
                    served.collection,
                )
                self._refused_target = target
                return served
            logger.info(
                "alias '%s' moved from '%s' to '%s' (model %s)",
                self.collection,
                served.collection,
                target,
                self._served.model_name,
            )
            return self._served
        finally:
            self._refreshing.release()

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        :param query: the query text.
        :param top_k: overrides the init ``top_k``.
        :param filters: overrides the init ``filters``.
        :returns: ``documents``, best first, each with its ``score``.
        """
        if self._client is None or self._served is None:
            self.warm_up()
        client = self._client
        assert client is not None
        limit = top_k if top_k is not None else self.top_k
        if limit < 1:
            raise ValueError(f"top_k must be positive, got {limit}")
        query_filter = convert_filters_to_qdrant(filters if filters is not None else self.filters)
        served = self._follow(client)
        try:
            points = self._search(client, served, query, query_filter, limit)
        except Exception:
            # the collection may have been deleted after the alias moved away from it (mpr collections prune)
            following = self.follow_alias_s is not None and served.collection != self.collection
            if not following or not self._deleted(client, served.collection):
                raise
            retry = self._follow(client, force=True)
            if retry.collection == served.collection:
                raise
            points = self._search(client, retry, query, query_filter, limit)
        documents = [convert_qdrant_point_to_haystack_document(p, use_sparse_embeddings=False) for p in points]
        return {"documents": documents}

    @staticmethod
    def _deleted(client: QdrantClient, collection: str) -> bool:
        try:
            return not client.collection_exists(collection)
        except Exception:  # Qdrant is unreachable: the search's own error says so
            return False

    @staticmethod
    def _search(
        client: QdrantClient, served: _Served, query: str, query_filter: models.Filter | None, limit: int
    ) -> list[models.ScoredPoint]:
        vector = served.encoder.embed_texts([query], "query")[0].float().cpu().tolist()
        response = client.query_points(
            served.collection,
            query=vector,
            query_filter=query_filter,
            limit=limit,
            with_payload=models.PayloadSelectorExclude(exclude=[FINGERPRINT_FIELD]),  # the indexer's own
            with_vectors=False,
        )
        return response.points

    def disconnect(self) -> None:
        """Release the Qdrant client (and the lock on a local Qdrant directory) but keep the encoder, so that
        reconnecting does not load the model again."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._served = None  # reconnecting resolves the alias again; the encoders stay

    def close(self) -> None:
        """Release the Qdrant client and the encoders."""
        self.disconnect()
        self._encoders.clear()

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
            follow_alias_s=self.follow_alias_s,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MPRetriever:
        deserialize_secrets_inplace(data.get("init_parameters", {}), keys=["api_key"])
        return default_from_dict(cls, data)
