"""Upserts at large dimensions: requests bounded by size under Qdrant's 32 MB limit, transient failures retried."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from mpretriever.data import BeirDataset
from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus, indexer, point_id
from mpretriever.index.collection import document_payload
from mpretriever.model import BiEncoder
from tests.conftest import TINY_WORDS

QDRANT_REQUEST_LIMIT = 32 * 1024 * 1024  # Qdrant's default service.max_request_size_mb


def request_body_bytes(points: list[models.PointStruct]) -> int:
    """The size of the JSON body qdrant-client sends for an upsert of ``points``."""
    return len(models.PointsList(points=points).model_dump_json(exclude_none=True).encode("utf-8"))


@pytest.fixture(scope="module")
def wide_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer random BERT with hidden size 1024 (as BERT-large, e5-large, bge-large), the tiny vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("wide-bert")
    BertTokenizerFast.from_pretrained(tiny_model_dir).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=BertConfig.from_pretrained(tiny_model_dir).vocab_size,
        hidden_size=1024,
        num_hidden_layers=1,
        num_attention_heads=16,
        intermediate_size=1024,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    return directory


def test_a_chunk_of_1024_d_points_is_split_into_requests_under_the_limit() -> None:
    rng = random.Random(0)
    vectors = np.random.default_rng(0).standard_normal((2048, 1024)).astype(np.float32)
    points = [
        models.PointStruct(
            id=point_id(f"doc-{n}"),
            vector=vector.tolist(),
            payload=document_payload(f"doc-{n}", "title é", " ".join(rng.choices(TINY_WORDS, k=200))),
        )
        for n, vector in enumerate(vectors)
    ]
    assert request_body_bytes(points) > QDRANT_REQUEST_LIMIT, "one request per chunk, as before, is refused"
    batches = list(indexer.request_batches(points))
    assert [point for batch in batches for point in batch] == points
    for batch in batches:
        estimated = sum(indexer.estimated_request_bytes(point) for point in batch)
        assert request_body_bytes(batch) <= estimated <= indexer.MAX_REQUEST_BYTES < QDRANT_REQUEST_LIMIT


def test_a_1024_d_model_is_indexed_in_bounded_requests_retried_once(
    wide_model_dir: Path, tiny_beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = BiEncoder.from_pretrained(wide_model_dir, normalize=True)
    assert encoder.dimension == 1024
    corpus = BeirDataset(tiny_beir).corpus
    client = QdrantSettings(path=str(tmp_path / "qdrant")).connect()
    ensure_collection(client, "wide", collection_manifest(encoder, "wide"))
    real_upsert = client.upsert
    requests: list[int] = []
    failures = [UnexpectedResponse(503, "Service Unavailable", b"", httpx.Headers())]

    def flaky_upsert(collection: str, points: list[models.PointStruct], **kwargs) -> models.UpdateResult:
        requests.append(request_body_bytes(points))
        if failures:
            raise failures.pop()
        return real_upsert(collection, points, **kwargs)

    waits: list[float] = []
    monkeypatch.setattr(client, "upsert", flaky_upsert)
    monkeypatch.setattr(indexer.time, "sleep", waits.append)
    limit = 100_000  # about four 1024-d points: a small corpus still needs many requests
    stats = index_corpus(encoder, corpus, client, "wide", max_request_bytes=limit, show_progress=False)
    assert stats.points_in_collection == stats.written == 60
    assert len(requests) > 10 and max(requests) <= limit
    assert waits == [indexer.FIRST_RETRY_DELAY_S], "the 503 is retried once, after the first back-off"
    client.close()


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (UnexpectedResponse(502, "Bad Gateway", b"", httpx.Headers()), True),
        (UnexpectedResponse(429, "Too Many Requests", b"", httpx.Headers()), True),
        (ResponseHandlingException(httpx.ReadTimeout("timed out")), True),
        (ResponseHandlingException(httpx.ConnectError("connection refused")), True),
        (UnexpectedResponse(400, "Bad Request", b"wrong vector size", httpx.Headers()), False),
        (ResponseHandlingException(ValueError("malformed response")), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_only_transient_errors_are_retried(error: Exception, transient: bool, monkeypatch) -> None:
    calls: list[int] = []

    class FailingClient:
        def upsert(self, *args, **kwargs) -> None:
            calls.append(1)
            raise error

    monkeypatch.setattr(indexer.time, "sleep", lambda seconds: None)
    with pytest.raises(type(error)):
        indexer.upsert_with_retry(FailingClient(), "docs", [])  # type: ignore[arg-type]
    assert len(calls) == (indexer.UPSERT_ATTEMPTS if transient else 1)
