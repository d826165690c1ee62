"""Many clients at once, on loopback: no errors, latency percentiles printed, the generator never run twice at once."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import TINY_WORDS
from tests.service.conftest import StubGenerator

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
