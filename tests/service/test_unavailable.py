"""Qdrant unreachable: a 503 with a clear message, never a 500, and recovery without a restart that keeps the
encoder and makes no request wait for the connection; a search Qdrant refuses: a 502."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from mpretriever.index import QdrantSettings, QdrantUnavailableError
from mpretriever.model import BiEncoder
from mpretriever.service import ServiceSettings, create_app
from mpretriever.service.search import CollectionSearch, SearchFailedError, ServiceUnavailableError
from tests.service.conftest import StubGenerator, free_loopback_port, serving


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_qdrant_gives_503_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"
    settings = ServiceSettings(qdrant=QdrantSettings(url=url, timeout=2), collection="tiny", rag_pipeline=None)
    with serving(create_app(settings)) as service_url:  # starts although Qdrant is down
        response = httpx.post(f"{service_url}/query", json={"question": "cancer"})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert response.json()["detail"].startswith("cannot reach Qdrant: ")
        health = httpx.get(f"{service_url}/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["qdrant"]["reachable"] is False and health.json()["qdrant"]["mode"] == "server"
        assert health.json()["qdrant"]["detail"].startswith("cannot reach Qdrant: ")
        for answer in (response, health):  # what is wrong, not where Qdrant lives
            assert url.removeprefix("http://") not in answer.text
        bad = httpx.post(f"{service_url}/query", json={"question": ""})
        assert bad.status_code == 422  # validation does not need Qdrant


def test_missing_collection_gives_503_and_reports_qdrant_reachable(private_settings: ServiceSettings) -> None:
    search = CollectionSearch(replace(private_settings, collection="nope"), reconnect_interval_s=0)
    with pytest.raises(ServiceUnavailableError, match="collection 'nope' does not exist") as raised:
        search.search("cancer", 3)
    status = search.status()
    assert status.reachable is True and status.points is None and "does not exist" in (status.detail or "")
    store = str(Path(private_settings.qdrant.path or "").parent)
    assert store not in str(raised.value) and store not in (status.detail or "")


@pytest.fixture()
def flaky_connect(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first Qdrant connection attempt fails as if the server were down; later ones connect."""
    attempts: list[int] = []
    connect = QdrantSettings.connect

    def first_fails(settings: QdrantSettings, *args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise QdrantUnavailableError(f"cannot reach Qdrant at {settings.location}: connection refused")
        return connect(settings, *args, **kwargs)

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


def test_a_lost_connection_is_rebuilt_keeping_the_encoder(
    private_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load = BiEncoder.from_pretrained

    def counted(name: str, *args: Any, **kwargs: Any) -> BiEncoder:
        loads.append(name)
        return load(name, *args, **kwargs)

    monkeypatch.setattr(BiEncoder, "from_pretrained", counted)
    search = CollectionSearch(private_settings, reconnect_interval_s=0)
    try:
        assert len(search.search("cancer", 2)) == 2
        first = search._connection
        assert first is not None
        retriever = search._retriever

        def lost(**_: object) -> None:
            raise ResponseHandlingException(ConnectionError("connection reset by peer"))

        retriever.run = lost  # type: ignore[method-assign]
        with pytest.raises(
            ServiceUnavailableError, match=r"^lost the connection to Qdrant: .*connection reset by peer"
        ):
            search.search("cancer", 2)
        assert search._connection is None
        del retriever.run
        assert len(search.search("cancer", 2)) == 2
        assert search._connection is not None and search._connection.client is not first.client
        assert len(loads) == 1  # reconnecting opened a new client; it did not load the model again
    finally:
        search.close()


def test_while_one_request_connects_the_others_and_health_do_not_wait(
    private_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    connect = QdrantSettings.connect

    def slow(settings: QdrantSettings, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(timeout=60)
        return connect(settings, *args, **kwargs)

    monkeypatch.setattr(QdrantSettings, "connect", slow)
    search = CollectionSearch(private_settings, reconnect_interval_s=0)
    with ThreadPoolExecutor(max_workers=2) as pool:
        connecting = pool.submit(search.search, "cancer", 2)
        try:
            assert entered.wait(timeout=60)
            status = pool.submit(search.status).result(timeout=5)  # before: waited for the connection
            assert status.reachable is False and status.detail == "connecting to Qdrant; retry shortly"
            with pytest.raises(ServiceUnavailableError, match="connecting to Qdrant"):
                search.search("cancer", 2)
        finally:
            release.set()
        assert len(connecting.result(timeout=60)) == 2
    search.close()


def test_a_search_qdrant_refuses_is_a_502_with_its_reason(private_settings: ServiceSettings) -> None:
    search = CollectionSearch(private_settings, reconnect_interval_s=0)
    try:
        search.connect()
        reason = b'{"status":{"error":"Wrong input: Vector dimension error: expected dim: 8, got 4"},"time":0.0}'

        def refused(**_: object) -> None:
            raise UnexpectedResponse(400, "Bad Request", reason, httpx.Headers())

        search._retriever.run = refused  # type: ignore[method-assign]
        with pytest.raises(SearchFailedError) as raised:
            search.search("cancer", 2)
        assert (
            str(raised.value)
            == "Qdrant refused the search: Wrong input: Vector dimension error: expected dim: 8, got 4"
        )
        assert search._connection is not None  # Qdrant answered: the connection is fine
    finally:
        search.close()


def test_query_vectors_of_another_dimension_give_a_502(
    private_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(replace(private_settings, rag_pipeline=None))
    with serving(app) as service_url:
        encoder = app.state.service.search._retriever.encoder
        monkeypatch.setattr(encoder, "embed_texts", lambda texts, *_, **__: torch.zeros(len(texts), 3))
        response = httpx.post(f"{service_url}/query", json={"question": "cancer"})
        assert response.status_code == 502, response.text
        assert response.json()["detail"].startswith("Qdrant refused the search: ")
        monkeypatch.undo()
        assert httpx.post(f"{service_url}/query", json={"question": "cancer"}).status_code == 200


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
