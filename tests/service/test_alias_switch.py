"""The service follows its alias to a retrained model while 8 clients query: no request fails, and afterwards the
answers are the new model's. The new model gives vectors of another dimension, so a query embedded by one model and
searched among the other's vectors would be refused by Qdrant, not pass unnoticed."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mpretriever.data import BeirDataset
from mpretriever.index import QdrantSettings, index_dataset
from mpretriever.index.versions import alias_target, switch_alias
from mpretriever.model import BiEncoder
from mpretriever.service import ServiceSettings, create_app
from tests.conftest import TINY_WORDS
from tests.service.conftest import serving

CLIENTS = 8
SWITCH_DEADLINE_S = 15


@pytest.fixture(scope="module")
def wider_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-dimensional model (the tiny BERT's vocabulary, another width): the 'retrained' model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("wider-bert")
    BertTokenizerFast.from_pretrained(tiny_model_dir).save_pretrained(directory)
    torch.manual_seed(1)
    config = BertConfig.from_pretrained(tiny_model_dir, hidden_size=48, intermediate_size=96)
    BertModel(config).save_pretrained(directory)
    run = directory / "run"
    BiEncoder.from_pretrained(directory, normalize=True).save(run)
    return run


def _query_loop(url: str, index: int, stop: threading.Event, failures: list[str], answered: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        number = 0
        while not stop.is_set():
            words = TINY_WORDS[(index * 7 + number) % 30 :][:3]
            number += 1
            try:
                response = client.post("/query", json={"question": " ".join(words), "top_k": 5, "generate": False})
            except httpx.HTTPError as error:
                failures.append(f"{type(error).__name__}: {error}")
                continue
            if response.status_code != 200 or len(response.json()["passages"]) != 5:
                failures.append(f"{response.status_code}: {response.text[:200]}")
            answered[index] += 1


def test_eight_clients_query_through_an_alias_switch_without_a_failure(
    tiny_run: Path, wider_run: Path, tiny_beir: Path, tmp_path: Path
) -> None:
    qdrant = QdrantSettings(path=str(tmp_path / "qdrant"))
    corpus = BeirDataset(tiny_beir).corpus
    built = {}
    for run in (wider_run, tiny_run):  # the alias ends on tiny_run's collection; the wider one waits aside
        outcome = index_dataset(
            BiEncoder.from_pretrained(run),
            corpus,
            "tiny",
            qdrant,
            "live",
            str(run),
            alias=True,
            show_progress=False,
            workers=1,
        )
        built[run] = outcome.collection
    old, new = built[tiny_run], built[wider_run]

    app = create_app(ServiceSettings(qdrant=qdrant, collection="live", threads=4, rag_pipeline=None))
    with serving(app) as url:
        assert httpx.get(f"{url}/health").json()["qdrant"]["serving"] == old
        stop, failures, answered = threading.Event(), [], [0] * CLIENTS
        arguments = [(url, index, stop, failures, answered) for index in range(CLIENTS)]
        clients = [threading.Thread(target=_query_loop, args=args) for args in arguments]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1.0)
            before = sum(answered)
            client = app.state.service.search._retriever.client  # an embedded Qdrant admits this one client only
            started = time.perf_counter()
            switch_alias(client, "live", new)
            switch_s = time.perf_counter() - started
            client.delete_collection(old)  # pruned at once: requests still bound for it must not fail
            while httpx.get(f"{url}/health").json()["qdrant"]["serving"] != new:
                assert time.perf_counter() - started < SWITCH_DEADLINE_S, "the service never followed the alias"
                time.sleep(0.05)
            followed_s = time.perf_counter() - started
            at_switch = sum(answered)
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
        print(
            f"\n{CLIENTS} clients: {sum(answered)} queries, {at_switch - before} during the switch; alias request "
            f"{switch_s * 1000:.1f} ms, service on the new model after {followed_s * 1000:.0f} ms"
        )
        assert failures == [], failures[:5]
        assert before > 0 and sum(answered) > at_switch  # queries were answered before, during and after
        assert alias_target(client, "live") == new and not client.collection_exists(old)

        question = "cancer cell diet"
        response = httpx.post(f"{url}/query", json={"question": question, "top_k": 5, "generate": False})
        vector = BiEncoder.from_pretrained(wider_run).embed_texts([question], "query")[0].tolist()
        expected = client.query_points(new, query=vector, limit=5).points
        served = response.json()["passages"]
        assert [p["id"] for p in served] == [point.payload["id"] for point in expected]
        assert [p["score"] for p in served] == pytest.approx([point.score for point in expected], abs=1e-5)


def test_the_health_check_names_the_collection_behind_the_alias(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path
) -> None:
    qdrant = QdrantSettings(path=str(tmp_path / "qdrant"))
    outcome = index_dataset(
        BiEncoder.from_pretrained(tiny_run),
        BeirDataset(tiny_beir).corpus,
        "tiny",
        qdrant,
        "live",
        str(tiny_run),
        alias=True,
        show_progress=False,
        workers=1,
    )
    settings = replace(ServiceSettings(qdrant=qdrant, collection="live"), rag_pipeline=None)
    with serving(create_app(settings)) as url:
        status = httpx.get(f"{url}/health").json()["qdrant"]
    assert (status["collection"], status["serving"], status["points"]) == ("live", outcome.collection, 60)
