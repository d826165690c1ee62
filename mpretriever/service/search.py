"""Searching the collection from many threads through one ``MPRetriever``, and surviving Qdrant outages.

The retriever is connected on first use (or at start-up). A connection error while searching drops it: requests
still running on it finish (and fail), it is closed once the last one is done, and the next request connects a new
one, so the service recovers without a restart when Qdrant comes back. While Qdrant is unreachable a new connection
is tried at most once per ``reconnect_interval_s``; requests in between fail at once with the last error.

The same code serves a Qdrant server and an embedded Qdrant directory: only the ``QdrantSettings`` differ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from haystack import Document
from haystack.utils import Secret
from haystack.utils.filters import LOGICAL_OPERATORS, FilterError
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from mpretriever.haystack.retriever import MPRetriever
from mpretriever.index.connection import QdrantUnavailableError
from mpretriever.service.schemas import QdrantStatus
from mpretriever.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

QDRANT_ERRORS = (ResponseHandlingException, UnexpectedResponse, httpx.TransportError, ConnectionError, TimeoutError)
TOP_LEVEL_FIELDS = ("id", "content")
META_SAMPLE_SIZE = 256
RECONNECT_INTERVAL_S = 1.0


class ServiceUnavailableError(RuntimeError):
    """Qdrant or the collection cannot serve queries now (HTTP 503)."""

    def __init__(self, message: str, qdrant_reachable: bool = False) -> None:
        super().__init__(message)
        self.qdrant_reachable = qdrant_reachable


class InvalidFilterError(ValueError):
    """A malformed filter, or one on a field the collection's documents lack (HTTP 422)."""


def filter_fields(filters: Any) -> set[str]:
    """The document fields a Haystack filter compares; :class:`InvalidFilterError` when it is not shaped like one."""
    if not isinstance(filters, dict):
        raise InvalidFilterError(f"malformed filter: expected an object, got {filters!r}")
    operator = filters.get("operator")
    if operator in LOGICAL_OPERATORS:
        conditions = filters.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise InvalidFilterError(f"malformed filter: '{operator}' needs 'conditions', a non-empty list of filters")
        return set().union(*(filter_fields(condition) for condition in conditions))
    if not isinstance(filters.get("field"), str):
        raise InvalidFilterError(
            f"malformed filter: a comparison needs 'field' (a name), 'operator' and 'value', got {filters}"
        )
    return {filters["field"]}


def check_filter(filters: dict[str, Any], known_fields: Collection[str] | None = None) -> None:
    """Raise :class:`InvalidFilterError` unless ``filters`` is a Haystack filter that Qdrant can run, on fields
    among ``known_fields`` (when given)."""
    fields = filter_fields(filters)
    try:
        convert_filters_to_qdrant(filters)
    except ValidationError as error:  # a value of the wrong type for the operator
        detail = error.errors(include_url=False)[0]
        raise InvalidFilterError(f"malformed filter: {detail['msg']}: {detail['input']!r}") from error
    except (FilterError, ValueError, TypeError) as error:
        raise InvalidFilterError(f"malformed filter: {error}") from error
    unknown = sorted(fields - set(known_fields)) if known_fields is not None else []
    if unknown:
        known = ", ".join(sorted(known_fields or ()))
        raise InvalidFilterError(f"unknown filter field {', '.join(map(repr, unknown))}: the documents have {known}")


@dataclass
class _Connection:
    """A connected retriever, the fields of its collection's documents, and the requests using it."""

    retriever: MPRetriever
    fields: frozenset[str]
    users: int = 0
    dropped: bool = False

    @property
    def client(self) -> QdrantClient:
        client = self.retriever.client
        assert client is not None
        return client


class CollectionSearch:
    """Thread-safe, reconnecting search of one collection."""

    def __init__(self, settings: ServiceSettings, reconnect_interval_s: float = RECONNECT_INTERVAL_S) -> None:
        self.settings = settings
        self.reconnect_interval_s = reconnect_interval_s
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._last_failure: tuple[float, ServiceUnavailableError] | None = None

    @property
    def location(self) -> str:
        return self.settings.qdrant.location

    def _connect(self) -> _Connection:
        qdrant = self.settings.qdrant
        retriever = MPRetriever(
            collection=self.settings.collection,
            model=self.settings.model,
            qdrant_path=qdrant.path,
            qdrant_url=qdrant.url,
            api_key=Secret.from_token(qdrant.api_key) if qdrant.api_key else None,
            backend=self.settings.backend,
            timeout=qdrant.timeout,
        )
        try:
            retriever.warm_up()
        except QdrantUnavailableError as error:
            raise ServiceUnavailableError(str(error)) from error
        except (ValueError, OSError, *QDRANT_ERRORS) as error:  # no such collection, no model, another model
            raise ServiceUnavailableError(
                f"cannot search collection '{self.settings.collection}' in {self.location}: {error}",
                qdrant_reachable=True,
            ) from error
        connection = _Connection(retriever, frozenset())
        try:
            connection.fields = self._document_fields(connection.client)
        except QDRANT_ERRORS as error:
            retriever.close()
            raise ServiceUnavailableError(f"lost the connection to {self.location}: {error}") from error
        logger.info("searching collection '%s' in %s", self.settings.collection, self.location)
        return connection

    def _document_fields(self, client: QdrantClient) -> frozenset[str]:
        """``id``, ``content`` and ``meta.<name>`` for the meta fields of the first documents of the collection."""
        points, _ = client.scroll(
            self.settings.collection, limit=META_SAMPLE_SIZE, with_payload=["meta"], with_vectors=False
        )
        names = {name for point in points for name in ((point.payload or {}).get("meta") or {})}
        return frozenset([*TOP_LEVEL_FIELDS, *(f"meta.{name}" for name in names)])

    @contextmanager
    def _lease(self) -> Iterator[_Connection]:
        """The current connection (made if needed), kept open while the caller uses it."""
        with self._lock:
            if self._connection is None:
                if self._last_failure and time.monotonic() - self._last_failure[0] < self.reconnect_interval_s:
                    last = self._last_failure[1]
                    raise ServiceUnavailableError(str(last), last.qdrant_reachable)
                try:
                    self._connection = self._connect()
                except ServiceUnavailableError as error:
                    self._last_failure = (time.monotonic(), error)
                    raise
                self._last_failure = None
            connection = self._connection
            connection.users += 1
        try:
            yield connection
        finally:
            with self._lock:
                connection.users -= 1
                if connection.dropped and connection.users == 0:
                    connection.retriever.close()

    def _drop(self, connection: _Connection, error: Exception) -> ServiceUnavailableError:
        """Forget a connection that failed (it is closed when its last user is done); the error to raise."""
        with self._lock:
            if self._connection is connection:
                logger.warning("lost the connection to %s: %s; reconnecting on the next request", self.location, error)
                self._connection = None
            connection.dropped = True
        return ServiceUnavailableError(f"lost the connection to {self.location}: {error}")

    def connect(self) -> None:
        """Connect now (at start-up) rather than on the first request; raises :class:`ServiceUnavailableError`."""
        with self._lease():
            pass

    def search(self, query: str, top_k: int, filters: dict[str, Any] | None = None) -> list[Document]:
        """The ``top_k`` best documents for ``query``, best first.

        :raises InvalidFilterError: a malformed filter, or one on a field the documents lack.
        :raises ServiceUnavailableError: Qdrant is unreachable or the collection cannot be searched.
        """
        if filters:
            check_filter(filters)
        with self._lease() as connection:
            if filters:
                check_filter(filters, connection.fields)
            try:
                return connection.retriever.run(query=query, top_k=top_k, filters=filters)["documents"]
            except UnexpectedResponse as error:
                if error.status_code == 400:
                    detail = error.content.decode(errors="replace")
                    raise InvalidFilterError(f"Qdrant refused the query: {detail}") from error
                raise self._drop(connection, error) from error
            except QDRANT_ERRORS as error:
                raise self._drop(connection, error) from error

    def status(self) -> QdrantStatus:
        """Whether Qdrant answers, and how many points the collection holds."""
        status = QdrantStatus(location=self.location, reachable=False, collection=self.settings.collection)
        try:
            with self._lease() as connection:
                try:
                    status.points = connection.client.get_collection(self.settings.collection).points_count
                except QDRANT_ERRORS as error:
                    raise self._drop(connection, error) from error
        except ServiceUnavailableError as error:
            status.reachable, status.detail = error.qdrant_reachable, str(error)
            return status
        status.reachable = True
        return status

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.dropped = True
                if connection.users == 0:
                    connection.retriever.close()
