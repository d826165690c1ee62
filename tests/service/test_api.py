"""The HTTP API over real HTTP: queries, generation through an injected generator, bad inputs, health, OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mpretriever.service.schemas import MAX_TOP_K
from tests.service.conftest import StubGenerator


def test_query_returns_ranked_passages_and_the_generated_answer(
    service_url: str, stub_generator: StubGenerator
) -> None:
    response = httpx.post(f"{service_url}/query", json={"question": "  cancer cell diet ", "top_k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["question"] == "cancer cell diet"
    passages = body["passages"]
    assert len(passages) == 4
    assert set(passages[0]) == {"id", "score", "title", "content", "meta"}
    scores = [passage["score"] for passage in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(passage["content"] and passage["title"] == passage["meta"]["title"] for passage in passages)
    assert body["answer"] == f"stub answer to 'cancer cell diet' from {passages[0]['id']}"
    assert body["retrieval_ms"] > 0 and body["generation_ms"] is not None


def test_generate_false_skips_the_generator(service_url: str, stub_generator: StubGenerator) -> None:
    calls = stub_generator.calls
    body = httpx.post(f"{service_url}/query", json={"question": "heart blood", "generate": False}).json()
    assert len(body["passages"]) == 5  # the default top_k
    assert body["answer"] is None and body["generation_ms"] is None
    assert stub_generator.calls == calls


def test_filters_restrict_the_passages(service_url: str) -> None:
    title = {"field": "meta.title", "operator": "==", "value": "cancer"}
    body = httpx.post(f"{service_url}/query", json={"question": "diet", "top_k": 20, "filters": title}).json()
    assert body["passages"] and {passage["title"] for passage in body["passages"]} == {"cancer"}
    both = {"operator": "AND", "conditions": [title, {"field": "id", "operator": "!=", "value": "d1-0"}]}
    body = httpx.post(f"{service_url}/query", json={"question": "diet", "top_k": 20, "filters": both}).json()
    assert body["passages"] and "d1-0" not in {passage["id"] for passage in body["passages"]}


BAD_REQUESTS: dict[str, tuple[Any, str]] = {
    "empty question": ({"question": ""}, "at least 1 character"),
    "whitespace question": ({"question": " \n\t "}, "at least 1 character"),
    "missing question": ({"top_k": 3}, "Field required"),
    "huge top_k": ({"question": "x", "top_k": 10_000}, f"less than or equal to {MAX_TOP_K}"),
    "zero top_k": ({"question": "x", "top_k": 0}, "greater than or equal to 1"),
    "unknown request field": ({"question": "x", "topk": 3}, "Extra inputs are not permitted"),
    "list as filters": ({"question": "x", "filters": [{"field": "meta.title"}]}, "valid dictionary"),
    "unknown filter field": (
        {"question": "x", "filters": {"field": "meta.year", "operator": ">", "value": 2000}},
        "unknown filter field 'meta.year': the documents have content, id, meta.title",
    ),
    "field without meta prefix": (
        {"question": "x", "filters": {"field": "title", "operator": "==", "value": "cancer"}},
        "unknown filter field 'title'",
    ),
    "unknown operator": (
        {"question": "x", "filters": {"field": "meta.title", "operator": "~", "value": "c"}},
        "Unknown operator ~",
    ),
    "comparison without a field": ({"question": "x", "filters": {"operator": "==", "value": 1}}, "needs 'field'"),
    "conditions not a list": (
        {"question": "x", "filters": {"operator": "AND", "conditions": {"field": "id"}}},
        "'AND' needs 'conditions'",
    ),
    "value of the wrong type": (
        {"question": "x", "filters": {"field": "meta.title", "operator": ">", "value": [1]}},
        "not an int or float",
    ),
}


@pytest.mark.parametrize("body, message", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_a_422_with_a_clear_message(service_url: str, body: Any, message: str) -> None:
    response = httpx.post(f"{service_url}/query", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text


@pytest.mark.parametrize("content", [b'{"question": "x",', b"question=x", b""], ids=["truncated", "form", "empty"])
def test_malformed_json_gets_a_422(service_url: str, content: bytes) -> None:
    response = httpx.post(f"{service_url}/query", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "JSON decode error" in response.text or "Field required" in response.text


def test_health_reports_the_collection(service_url: str) -> None:
    response = httpx.get(f"{service_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "qdrant": {
            "location": response.json()["qdrant"]["location"],
            "reachable": True,
            "collection": "tiny",
            "points": 60,
            "detail": None,
        },
        "generator": "stub",
    }


def test_openapi_schema_documents_the_api(service_url: str) -> None:
    schema = httpx.get(f"{service_url}/openapi.json").json()
    assert {"/query", "/health"} <= set(schema["paths"])
    assert "/" not in schema["paths"]
    request = schema["components"]["schemas"]["QueryRequest"]["properties"]
    assert request["top_k"]["maximum"] == MAX_TOP_K and request["top_k"]["default"] == 5
    assert {"422", "502", "503"} <= set(schema["paths"]["/query"]["post"]["responses"])
