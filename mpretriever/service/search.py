"""Searching the collection from many threads through one ``MPRetriever``, and surviving Qdrant outages.

The retriever connects at start-up (or on first use). A connection error while searching drops the connection:
requests still running on it finish (and fail), and once the last one is done the next request reconnects, so the
service recovers without a restart when Qdrant comes back. Reconnecting opens a new Qdrant client only: the encoder
stays loaded, and the connection is made outside the lock, so that no other request (nor ``/health``) waits for it:
while one request connects, the others get a 503 at once. While Qdrant is unreachable a new connection is tried at
most once per ``reconnect_interval_s``; requests in between fail at once with the last error.

Filters are checked for their shape and size, not against the documents' fields: a comparison on a meta field no
document has matches nothing, as in every Haystack document store. (Knowing every field would need a scan of the
whole collection, and the list would be wrong again as soon as documents with a new field are indexed.)

The collection may be an alias (``mpr index --alias``): the retriever follows it when it moves to a retrained model,
without a restart and without failing a request (see :class:`~mpretriever.haystack.retriever.MPRetriever`).

The same code serves a Qdrant server and an embedded Qdrant directory: only the ``QdrantSettings`` differ.
"""

from __future__ import annotations

import json
import logging
import math
import reprlib
import threading
import time
from collections.abc import Iterator
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
from mpretriever.service.errors import public_message
from mpretriever.service.schemas import QdrantStatus
from mpretriever.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

QDRANT_ERRORS = (ResponseHandlingException, UnexpectedResponse, httpx.TransportError, ConnectionError, TimeoutError)
TOP_LEVEL_FIELDS = ("id", "content")
META_PREFIX = "meta."
RECONNECT_INTERVAL_S = 1.0


class ServiceUnavailableError(RuntimeError):
    """Qdrant or the collection cannot serve queries now (HTTP 503). The message is fit for clients."""

    def __init__(self, message: str, qdrant_reachable: bool = False) -> None:
        super().__init__(public_message(message))
        self.qdrant_reachable = qdrant_reachable


class InvalidFilterError(ValueError):
    """A malformed filter, or one over the service's limits (HTTP 422)."""


class SearchFailedError(RuntimeError):
    """Qdrant refused a search the service built from a valid request, e.g. a query vector of another dimension
    than the collection's (HTTP 502): a fault of the deployment, not of the request."""


def check_filter(filters: Any, max_conditions: int, max_depth: int) -> None:
    """Raise :class:`InvalidFilterError` unless ``filters`` is a Haystack filter that Qdrant can run, of at most
    ``max_conditions`` comparisons nested at most ``max_depth`` deep (a lone comparison is depth 1), on the fields
    ``id``, ``content`` or ``meta.<name>``, with finite numbers and valid Unicode text."""
    comparisons = 0
    pending: list[tuple[Any, int]] = [(filters, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            raise InvalidFilterError(
                f"filter nested deeper than the limit of {max_depth} levels (MPR_MAX_FILTER_DEPTH)"
            )
        if not isinstance(node, dict):
            raise InvalidFilterError(f"malformed filter: expected an object, got {type(node).__name__}")
        operator = node.get("operator")
        if operator in LOGICAL_OPERATORS:
            conditions = node.get("conditions")
            if not isinstance(conditions, list) or not conditions:
                raise InvalidFilterError(
                    f"malformed filter: '{operator}' needs 'conditions', a non-empty list of filters"
                )
            pending.extend((condition, depth + 1) for condition in conditions)
            continue
        comparisons += 1
        if comparisons > max_conditions:
            raise InvalidFilterError(
                f"filter has more than the limit of {max_conditions} comparisons (MPR_MAX_FILTER_CONDITIONS)"
            )
        _check_comparison(node)
    try:
        convert_filters_to_qdrant(filters)
    except ValidationError as error:  # a value of the wrong type for the operator
        detail = error.errors(include_url=False)[0]
        raise InvalidFilterError(f"malformed filter: {detail['msg']}: {reprlib.repr(detail['input'])}") from error
    except (FilterError, ValueError, TypeError) as error:
        raise InvalidFilterError(public_message(f"malformed filter: {error}")) from error


def _check_comparison(comparison: dict[str, Any]) -> None:
    field = comparison.get("field")
    if not isinstance(field, str):
        raise InvalidFilterError("malformed filter: a comparison needs 'field' (a name), 'operator' and 'value'")
    if not _is_unicode(field) or (field not in TOP_LEVEL_FIELDS and not field.startswith(META_PREFIX)):
        raise InvalidFilterError(
            f"unknown filter field {reprlib.repr(field)}: filter on id, content or {META_PREFIX}<name>"
        )
    value = comparison.get("value")
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidFilterError(f"malformed filter: the value of {reprlib.repr(field)} is not a finite number")
        if isinstance(item, str) and not _is_unicode(item):
            raise InvalidFilterError(f"malformed filter: the value of {reprlib.repr(field)} is not valid Unicode text")


def _is_unicode(text: str) -> bool:
    """Whether ``text`` can be encoded (JSON parsers accept lone surrogates such as ``"\\ud800"``)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _qdrant_reason(error: UnexpectedResponse) -> str:
    """The reason Qdrant gives in the body of an error response."""
    try:
        return str(json.loads(error.content)["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return error.content.decode(errors="replace")


@dataclass
class _Connection:
    """One Qdrant client of the retriever, from connecting until it fails."""

    client: QdrantClient


class CollectionSearch:
    """Thread-safe, reconnecting search of one collection."""

    def __init__(self, settings: ServiceSettings, reconnect_interval_s: float = RECONNECT_INTERVAL_S) -> None:
        self.settings = settings
        self.reconnect_interval_s = reconnect_interval_s
        qdrant = settings.qdrant
        self._retriever = MPRetriever(
            collection=settings.collection,
            model=settings.model,
            qdrant_path=qdrant.path,
            qdrant_url=qdrant.url,
            api_key=Secret.from_token(qdrant.api_key) if qdrant.api_key else None,
            backend=settings.backend,
            timeout=qdrant.timeout,
        )
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._connecting = False
        self._users = 0  # requests holding a lease, on the current connection or on one that failed
        self._last_failure: tuple[float, ServiceUnavailableError] | None = None

    @property
    def mode(self) -> str:
        return "server" if self.settings.qdrant.url else "embedded"

    def _connect(self) -> _Connection:
        """A new client for the retriever (whose encoder is loaded once and kept). Called outside the lock, by one
        thread at a time, while no request uses the retriever."""
        collection = self.settings.collection
        self._retriever.disconnect()
        try:
            self._retriever.warm_up()
        except QdrantUnavailableError as error:
            raise ServiceUnavailableError(f"cannot reach Qdrant: {error.__cause__ or error}") from error
        except (ValueError, OSError, *QDRANT_ERRORS) as error:  # no such collection, no model, another model
            raise ServiceUnavailableError(
                f"cannot search collection '{collection}': {error}", qdrant_reachable=True
            ) from error
        client = self._retriever.client
        assert client is not None
        logger.info("searching collection '%s' in %s", collection, self.settings.qdrant.location)
        return _Connection(client)

    @contextmanager
    def _lease(self) -> Iterator[_Connection]:
        """The current connection (made if needed and possible now), kept open while the caller uses it."""
        with self._lock:
            connection = self._connection
            if connection is None:
                if self._connecting:
                    raise ServiceUnavailableError("connecting to Qdrant; retry shortly")
                recent = self._last_failure and time.monotonic() - self._last_failure[0] < self.reconnect_interval_s
                if self._last_failure and (recent or self._users):  # users: requests still on a failed connection
                    last = self._last_failure[1]
                    raise ServiceUnavailableError(str(last), last.qdrant_reachable)
                self._connecting = True
            else:
                self._users += 1
        if connection is None:
            connection = self._reconnect()
        try:
            yield connection
        finally:
            with self._lock:
                self._users -= 1

    def _reconnect(self) -> _Connection:
        """Connect, outside the lock; the new connection comes leased to the caller."""
        try:
            connection = self._connect()
        except ServiceUnavailableError as error:
            with self._lock:
                repeated = self._last_failure is not None and str(self._last_failure[1]) == str(error)
                self._connecting = False
                self._last_failure = (time.monotonic(), error)
            if not repeated:  # the full reason, with the location, once per outage
                location, reason = self.settings.qdrant.location, error.__cause__ or error
                logger.warning("cannot search '%s' in %s: %s", self.settings.collection, location, reason)
            raise
        with self._lock:
            self._connecting = False
            self._connection, self._last_failure = connection, None
            self._users += 1
        return connection

    def _drop(self, connection: _Connection, error: Exception) -> ServiceUnavailableError:
        """Forget a connection that failed (the next request after its last user reconnects); the error to raise."""
        unavailable = ServiceUnavailableError(f"lost the connection to Qdrant: {error}")
        with self._lock:
            if self._connection is connection:
                logger.warning("lost the connection to %s: %s; reconnecting", self.settings.qdrant.location, error)
                self._connection = None
                self._last_failure = (time.monotonic(), unavailable)
        return unavailable

    def connect(self) -> None:
        """Connect now (at start-up) rather than on the first request; raises :class:`ServiceUnavailableError`."""
        with self._lease():
            pass

    def search(self, query: str, top_k: int, filters: dict[str, Any] | None = None) -> list[Document]:
        """The ``top_k`` best documents for ``query``, best first.

        :raises InvalidFilterError: a malformed filter, or one over the limits of the settings.
        :raises ServiceUnavailableError: Qdrant is unreachable or the collection cannot be searched.
        :raises SearchFailedError: Qdrant refused the search (e.g. the collection's vectors have another dimension).
        """
        if filters:
            check_filter(filters, self.settings.max_filter_conditions, self.settings.max_filter_depth)
        with self._lease() as connection:
            try:
                return self._retriever.run(query=query, top_k=top_k, filters=filters or None)["documents"]
            except UnexpectedResponse as error:
                if error.status_code == 400:
                    raise self._refused(_qdrant_reason(error)) from error
                raise self._drop(connection, error) from error
            except QDRANT_ERRORS as error:
                raise self._drop(connection, error) from error
            except ValueError as error:  # what an embedded Qdrant raises where a server answers 400
                raise self._refused(str(error)) from error

    def _refused(self, reason: str) -> SearchFailedError:
        logger.error("Qdrant refused a search of collection '%s': %s", self.settings.collection, reason)
        return SearchFailedError(public_message(f"Qdrant refused the search: {reason}"))

    def status(self) -> QdrantStatus:
        """Whether Qdrant answers, and how many points the collection holds."""
        status = QdrantStatus(mode=self.mode, reachable=False, collection=self.settings.collection)
        try:
            with self._lease() as connection:
                try:
                    status.points = connection.client.get_collection(self.settings.collection).points_count
                except (*QDRANT_ERRORS, ValueError) as error:  # ValueError: an embedded Qdrant lost the collection
                    raise self._drop(connection, error) from error
        except ServiceUnavailableError as error:
            status.reachable, status.detail = error.qdrant_reachable, str(error)
            return status
        status.reachable, status.serving = True, self._retriever.served_collection
        return status

    def close(self) -> None:
        with self._lock:
            self._connection = None
        self._retriever.close()
