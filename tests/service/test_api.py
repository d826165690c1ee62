"""The HTTP API over real HTTP: queries, generation through an injected generator, bad inputs, health, OpenAPI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpretriever.service.schemas import MAX_QUESTION_CHARS, MAX_TOP_K
from mpretriever.service.settings import (
    DEFAULT_MAX_FILTER_CONDITIONS,
    DEFAULT_MAX_FILTER_DEPTH,
    DEFAULT_MAX_REQUEST_BYTES,
)
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
    "field without meta prefix": (
        {"question": "x", "filters": {"field": "title", "operator": "==", "value": "cancer"}},
        "unknown filter field 'title': filter on id, content or meta.<name>",
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


def test_health_reports_the_collection(service_url: str, service_index: Path) -> None:
    response = httpx.get(f"{service_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "qdrant": {
            "mode": "embedded",
            "reachable": True,
            "collection": "tiny",
            "serving": "tiny",
            "points": 60,
            "detail": None,
        },
        "generator": "stub",
    }
    assert str(service_index.parent) not in response.text  # where the store lives is nobody's business


def test_openapi_schema_documents_the_api(service_url: str) -> None:
    schema = httpx.get(f"{service_url}/openapi.json").json()
    assert {"/query", "/health"} <= set(schema["paths"])
    assert "/" not in schema["paths"]
    request = schema["components"]["schemas"]["QueryRequest"]["properties"]
    assert request["top_k"]["maximum"] == MAX_TOP_K and request["top_k"]["default"] == 5
    assert {"413", "422", "502", "503"} <= set(schema["paths"]["/query"]["post"]["responses"])


def test_a_filter_on_a_meta_field_no_document_has_matches_nothing(service_url: str) -> None:
    year = {"field": "meta.year", "operator": ">", "value": 2000}
    response = httpx.post(f"{service_url}/query", json={"question": "diet", "filters": year, "generate": False})
    assert response.status_code == 200, response.text
    assert response.json()["passages"] == []


def _or_of(count: int) -> dict[str, Any]:
    return {
        "operator": "OR",
        "conditions": [{"field": "meta.title", "operator": "==", "value": f"t{i}"} for i in range(count)],
    }


def _nested(depth: int) -> dict[str, Any]:
    """A filter ``depth`` levels deep: ANDs around one comparison."""
    node: dict[str, Any] = {"field": "meta.title", "operator": "==", "value": "cancer"}
    for _ in range(depth - 1):
        node = {"operator": "AND", "conditions": [node]}
    return node


def test_filters_within_the_limits_run(service_url: str) -> None:
    for filters in (_or_of(DEFAULT_MAX_FILTER_CONDITIONS), _nested(DEFAULT_MAX_FILTER_DEPTH)):
        response = httpx.post(f"{service_url}/query", json={"question": "diet", "filters": filters, "generate": False})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "filters, message",
    [
        (
            _or_of(1000),  # 58 KB: under the body limit
            f"more than the limit of {DEFAULT_MAX_FILTER_CONDITIONS} comparisons (MPR_MAX_FILTER_CONDITIONS)",
        ),
        (_or_of(DEFAULT_MAX_FILTER_CONDITIONS + 1), "MPR_MAX_FILTER_CONDITIONS"),
        (_nested(DEFAULT_MAX_FILTER_DEPTH + 1), f"deeper than the limit of {DEFAULT_MAX_FILTER_DEPTH} levels"),
        (_nested(400), "MPR_MAX_FILTER_DEPTH"),
    ],
    ids=["1000 conditions", "one condition too many", "one level too deep", "400 levels"],
)
def test_filters_over_the_limits_get_a_422_naming_the_limit(service_url: str, filters: Any, message: str) -> None:
    started = time.perf_counter()
    response = httpx.post(f"{service_url}/query", json={"question": "diet", "filters": filters})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert time.perf_counter() - started < 10  # refused before Qdrant evaluates it


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_size_limit_gets_a_413_naming_the_limit(service_url: str, chunked: bool) -> None:
    body = json.dumps({"question": "x" * 1_000_000}).encode()
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = httpx.post(f"{service_url}/query", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body over the limit of {DEFAULT_MAX_REQUEST_BYTES} bytes (MPR_MAX_REQUEST_BYTES)"
    }


def test_the_filter_of_2000_conditions_that_took_40_s_is_refused_at_once(service_url: str) -> None:
    started = time.perf_counter()
    response = httpx.post(f"{service_url}/query", json={"question": "diet", "filters": _or_of(2000)})
    assert response.status_code == 413 and "MPR_MAX_REQUEST_BYTES" in response.text  # 119 KB
    assert time.perf_counter() - started < 10


def test_validation_errors_say_what_is_wrong_without_echoing_the_input(service_url: str) -> None:
    question = "cancer " * 500  # 3,500 characters: over the question limit, under the body limit
    response = httpx.post(f"{service_url}/query", json={"question": question, "top_k": 3})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "question"],
                "msg": f"String should have at most {MAX_QUESTION_CHARS} characters",
                "type": "string_too_long",
            }
        ]
    }


UNENCODABLE_BODIES: dict[str, tuple[bytes, str]] = {
    "lone surrogate in the question": (b'{"question": "a\\ud800b"}', "valid string"),
    "top_k NaN": (b'{"question": "x", "top_k": NaN}', "finite number"),
    "top_k Infinity": (b'{"question": "x", "top_k": Infinity}', "finite number"),
    "top_k -Infinity": (b'{"question": "x", "top_k": -Infinity}', "finite number"),
    "lone surrogate as a field name": (b'{"question": "x", "\\udc80": 1}', "valid string"),
    "lone surrogate in a filter value": (
        b'{"question": "x", "filters": {"field": "meta.title", "operator": "==", "value": "\\ud800"}}',
        "not valid Unicode text",
    ),
    "NaN in a filter value": (
        b'{"question": "x", "filters": {"field": "meta.title", "operator": ">", "value": NaN}}',
        "not a finite number",
    ),
}


@pytest.mark.parametrize("content, message", UNENCODABLE_BODIES.values(), ids=UNENCODABLE_BODIES.keys())
def test_unencodable_input_gets_a_422_and_keeps_the_connection(service_url: str, content: bytes, message: str) -> None:
    with httpx.Client(base_url=service_url) as client:
        response = client.post("/query", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert message in response.text
        port = _local_port(response)
        after = client.post("/query", json={"question": "diet", "top_k": 1, "generate": False})
        assert after.status_code == 200
        assert _local_port(after) == port  # the same keep-alive connection


def _local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("socket").getsockname()[1]
