"""Qdrant unreachable: a 503 with a clear message, never a 500, and recovery without a restart."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
import pytest
from qdrant_client.http.exceptions import ResponseHandlingException

from mpretriever.index import QdrantSettings, QdrantUnavailableError
from mpretriever.service import ServiceSettings, create_app
from mpretriever.service.search import CollectionSearch, ServiceUnavailableError
from tests.service.conftest import StubGenerator, free_loopback_port, serving


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_qdrant_gives_503_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"
    settings = ServiceSettings(qdrant=QdrantSettings(url=url, timeout=2), collection="tiny", rag_pipeline=None)
    with serving(create_app(settings)) as service_url:  # starts although Qdrant is down
        response = httpx.post(f"{service_url}/query", json={"question": "cancer"})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert response.json()["detail"].startswith(f"cannot reach Qdrant at {url}")
        health = httpx.get(f"{service_url}/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["qdrant"]["reachable"] is False
        assert f"cannot reach Qdrant at {url}" in health.json()["qdrant"]["detail"]
        bad = httpx.post(f"{service_url}/query", json={"question": ""})
        assert bad.status_code == 422  # validation does not need Qdrant


def test_missing_collection_gives_503_and_reports_qdrant_reachable(private_settings: ServiceSettings) -> None:
    search = CollectionSearch(replace(private_settings, collection="nope"), reconnect_interval_s=0)
    with pytest.raises(ServiceUnavailableError, match="collection 'nope' does not exist"):
        search.search("cancer", 3)
    status = search.status()
    assert status.reachable is True and status.points is None and "does not exist" in (status.detail or "")


@pytest.fixture()
def flaky_connect(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first Qdrant connection attempt fails as if the server were down; later ones connect."""
    attempts: list[int] = []
    connect = QdrantSettings.connect

    def first_fails(settings: QdrantSettings):
        attempts.append(1)
        if len(attempts) == 1:
            raise QdrantUnavailableError(f"cannot reach Qdrant at {settings.location}: connection refused")
        return connect(settings)

    monkeypatch.setattr(QdrantSettings, "connect", first_fails)
    return attempts


def test_search_connects_again_after_a_failed_connection(
    private_settings: ServiceSettings, flaky_connect: list[int]
) -> None:
    search = CollectionSearch(private_settings, reconnect_interval_s=0.3)
    try:
        with pytest.raises(ServiceUnavailableError, match="connection refused"):
            search.search("cancer", 3)
        with pytest.raises(ServiceUnavailableError, match="connection refused"):
            search.search("cancer", 3)  # within the interval: the last error, without a new attempt
        assert len(flaky_connect) == 1
        time.sleep(0.35)
        assert len(search.search("cancer", 3)) == 3
        assert len(flaky_connect) == 2
    finally:
        search.close()


def test_a_connection_lost_while_searching_is_dropped_and_rebuilt(private_settings: ServiceSettings) -> None:
    search = CollectionSearch(private_settings, reconnect_interval_s=0)
    try:
        assert len(search.search("cancer", 2)) == 2
        connection = search._connection
        assert connection is not None

        def lost(**_: object) -> None:
            raise ResponseHandlingException(ConnectionError("connection reset by peer"))

        connection.retriever.run = lost  # type: ignore[method-assign]
        with pytest.raises(ServiceUnavailableError, match=r"lost the connection to .*connection reset by peer"):
            search.search("cancer", 2)
        assert search._connection is None and connection.dropped
        assert connection.retriever._client is None  # closed once its last user was done
        assert len(search.search("cancer", 2)) == 2
        assert search._connection is not None and search._connection is not connection
    finally:
        search.close()


def test_service_started_while_qdrant_was_down_recovers_without_a_restart(
    private_settings: ServiceSettings, flaky_connect: list[int]
) -> None:
    with serving(create_app(private_settings, generator=StubGenerator())) as service_url:
        assert len(flaky_connect) == 1  # the attempt at start-up failed
        assert httpx.get(f"{service_url}/health").status_code == 503
        deadline = time.monotonic() + 10
        while (response := httpx.post(f"{service_url}/query", json={"question": "cancer"})).status_code == 503:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.2)
        assert response.status_code == 200 and len(response.json()["passages"]) == 5
        assert httpx.get(f"{service_url}/health").status_code == 200
