"""Many clients at once, on loopback: no errors, latency percentiles printed, the generator never run twice at once,
and answers being written never hold up retrieval or the health check."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
from haystack import Document

from mpretriever.service import ServiceSettings, create_app
from tests.conftest import TINY_WORDS
from tests.service.conftest import StubGenerator, serving

CLIENTS = 8
QUERIES_PER_CLIENT = 200
REQUEST_TIMEOUT_S = 30
WALL_LIMIT_S = 120


def _client_run(service_url: str, client_index: int, queries: int, generate: bool) -> tuple[list[float], list[str]]:
    """``queries`` requests on one connection: their latencies (s) and any failures."""
    latencies, failures = [], []
    with httpx.Client(base_url=service_url, timeout=REQUEST_TIMEOUT_S) as client:
        for number in range(queries):
            words = TINY_WORDS[(client_index * 7 + number) % 30 :][:3]
            body = {"question": " ".join(words), "top_k": 1 + number % 10, "generate": generate}
            started = time.perf_counter()
            try:
                response = client.post("/query", json=body)
            except httpx.HTTPError as error:
                failures.append(f"{type(error).__name__}: {error}")
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or len(response.json()["passages"]) != body["top_k"]:
                failures.append(f"{response.status_code}: {response.text[:200]}")
    return latencies, failures


def _load(service_url: str, clients: int, queries: int, generate: bool) -> tuple[list[float], list[str], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        runs = list(pool.map(lambda index: _client_run(service_url, index, queries, generate), range(clients)))
    latencies = [latency for run, _ in runs for latency in run]
    failures = [failure for _, run in runs for failure in run]
    return latencies, failures, time.perf_counter() - started


def test_concurrent_queries_without_generation_all_succeed(service_url: str) -> None:
    latencies, failures, wall = _load(service_url, CLIENTS, QUERIES_PER_CLIENT, generate=False)
    assert failures == [], failures[:5]
    assert len(latencies) == CLIENTS * QUERIES_PER_CLIENT
    percentiles = statistics.quantiles(latencies, n=100)
    print(
        f"\n{CLIENTS} clients x {QUERIES_PER_CLIENT} queries (generate=false) in {wall:.1f} s: "
        f"{len(latencies) / wall:.0f} queries/s, p50 {percentiles[49] * 1000:.1f} ms, "
        f"p99 {percentiles[98] * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert wall < WALL_LIMIT_S


def test_concurrent_generation_is_serialised(service_url: str, stub_generator: StubGenerator) -> None:
    calls = stub_generator.calls
    _, failures, _ = _load(service_url, CLIENTS, 10, generate=True)
    assert failures == [], failures[:5]
    assert stub_generator.calls == calls + CLIENTS * 10
    assert not stub_generator.overlapped


class BlockingGenerator(StubGenerator):
    """Holds every answer until ``release`` is set (at most a minute); ``entered`` once the first is being written."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def generate(self, question: str, documents: list[Document]) -> str:
        self.entered.set()
        self.release.wait(timeout=60)
        return super().generate(question, documents)


def test_questions_waiting_for_the_generator_hold_up_neither_retrieval_nor_health(
    private_settings: ServiceSettings,
) -> None:
    generator = BlockingGenerator()
    settings = replace(private_settings, threads=2)
    with serving(create_app(settings, generator=generator)) as url, ThreadPoolExecutor(max_workers=4) as pool:
        answers = [pool.submit(httpx.post, f"{url}/query", json={"question": "cancer"}, timeout=90) for _ in range(4)]
        try:
            assert generator.entered.wait(timeout=30)
            time.sleep(0.2)  # the other three reach the generator's queue
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
            retrieval = httpx.post(f"{url}/query", json={"question": "cancer", "generate": False}, timeout=5)
            assert retrieval.status_code == 200 and retrieval.json()["answer"] is None
        finally:
            generator.release.set()
        assert [answer.result(timeout=90).status_code for answer in answers] == [200] * 4
    assert not generator.overlapped


def test_questions_beyond_the_generation_queue_get_a_503(private_settings: ServiceSettings) -> None:
    generator = BlockingGenerator()
    settings = replace(private_settings, generation_queue=1)
    with serving(create_app(settings, generator=generator)) as url, ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(httpx.post, f"{url}/query", json={"question": "cancer"}, timeout=90)
        try:
            assert generator.entered.wait(timeout=30)
            busy = httpx.post(f"{url}/query", json={"question": "cancer"}, timeout=5)
            assert busy.status_code == 503 and busy.headers["Retry-After"]
            assert "MPR_GENERATION_QUEUE" in busy.json()["detail"]
        finally:
            generator.release.set()
        assert first.result(timeout=90).status_code == 200
