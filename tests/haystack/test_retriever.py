"""MPRetriever: the Haystack component contract, retrieval, filters and the model check."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from haystack import Document, Pipeline
from haystack.utils import Secret

from mpretriever.data import BeirDataset
from mpretriever.haystack import MPRetriever
from mpretriever.index import (
    CollectionMismatchError,
    QdrantSettings,
    collection_manifest,
    ensure_collection,
    index_corpus,
)
from mpretriever.model import BiEncoder
from mpretriever.pipelines import ALLOWED_MODULES


def test_init_stores_every_parameter_and_does_no_work() -> None:
    retriever = MPRetriever(collection="c", model="m", qdrant_path="p", top_k=3, filters={"field": "meta.a"})
    assert (retriever.collection, retriever.model, retriever.qdrant_path, retriever.top_k) == ("c", "m", "p", 3)
    assert retriever._client is None and retriever.encoder is None
    with pytest.raises(ValueError, match="top_k must be positive"):
        MPRetriever(collection="c", top_k=0)


def test_to_dict(monkeypatch) -> None:
    monkeypatch.setenv("QDRANT_API_KEY", "secret-value")
    data = MPRetriever(collection="c", qdrant_url="http://localhost:6333", top_k=4).to_dict()
    assert data == {
        "type": "mpretriever.haystack.retriever.MPRetriever",
        "init_parameters": {
            "collection": "c",
            "model": None,
            "qdrant_path": "qdrant_data",
            "qdrant_url": "http://localhost:6333",
            "api_key": {"type": "env_var", "env_vars": ["QDRANT_API_KEY"], "strict": False},
            "top_k": 4,
            "filters": None,
            "device": None,
            "backend": "torch",
            "check_model": True,
            "timeout": 10,
            "query_max_length": None,
            "follow_alias_s": 1.0,
        },
    }
    assert "secret-value" not in str(data)


def test_to_dict_refuses_a_token_secret() -> None:
    with pytest.raises(ValueError, match=r"[Cc]annot serialize token-based secret"):
        MPRetriever(collection="c", api_key=Secret.from_token("x")).to_dict()


def test_from_dict() -> None:
    data = {
        "type": "mpretriever.haystack.retriever.MPRetriever",
        "init_parameters": {
            "collection": "docs",
            "model": "runs/x",
            "qdrant_path": None,
            "qdrant_url": "http://q:6333",
            "api_key": {"type": "env_var", "env_vars": ["MY_KEY"], "strict": False},
            "top_k": 7,
            "filters": {"field": "meta.title", "operator": "==", "value": "t"},
            "query_max_length": 64,
            "follow_alias_s": 0,
        },
    }
    retriever = MPRetriever.from_dict(data)
    assert retriever.query_max_length == 64 and retriever.to_dict()["init_parameters"]["query_max_length"] == 64
    assert retriever.follow_alias_s == 0
    assert retriever.collection == "docs" and retriever.top_k == 7 and retriever.qdrant_url == "http://q:6333"
    assert isinstance(retriever.api_key, Secret) and retriever.api_key.to_dict()["env_vars"] == ["MY_KEY"]
    assert retriever.filters == data["init_parameters"]["filters"]


def test_run_returns_scored_documents_best_first(tiny_index: Path) -> None:
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index), top_k=5)
    try:
        documents = retriever.run(query="cancer cell diet")["documents"]
        assert len(documents) == 5 and all(isinstance(d, Document) for d in documents)
        scores = [d.score for d in documents]
        assert scores == sorted(scores, reverse=True)
        assert all(d.content and d.embedding is None for d in documents)
        assert len(retriever.run(query="heart", top_k=2)["documents"]) == 2
    finally:
        retriever.close()


def test_filters_restrict_the_results(tiny_index: Path) -> None:
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index), top_k=50)
    try:
        only_noise = {"field": "meta.title", "operator": "==", "value": "noise"}
        documents = retriever.run(query="heart", filters=only_noise)["documents"]
        assert len(documents) == 24 and {d.meta["title"] for d in documents} == {"noise"}
    finally:
        retriever.close()


def test_warm_up_is_idempotent_and_close_releases_the_directory(tiny_index: Path) -> None:
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index))
    retriever.warm_up()
    client = retriever._client
    retriever.warm_up()
    assert retriever._client is client
    retriever.close()
    second = MPRetriever(collection="tiny", qdrant_path=str(tiny_index))
    second.warm_up()  # the local directory lock was released
    second.close()


def test_model_none_uses_the_collections_model(tiny_index: Path, tiny_run: Path) -> None:
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index))
    try:
        retriever.warm_up()
        assert retriever.encoder is not None
        assert retriever.encoder.fingerprint() == BiEncoder.from_pretrained(tiny_run).fingerprint()
    finally:
        retriever.close()


def test_another_model_is_refused(tiny_index: Path, tiny_model_dir: Path) -> None:
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index), model=str(tiny_model_dir))
    with pytest.raises(CollectionMismatchError, match="was indexed with model"):
        retriever.warm_up()
    assert retriever._client is None
    MPRetriever(collection="tiny", qdrant_path=str(tiny_index)).close()  # nothing left locked


def test_missing_collection_is_a_clear_error(tiny_index: Path) -> None:
    retriever = MPRetriever(collection="nope", qdrant_path=str(tiny_index))
    with pytest.raises(ValueError, match="collection 'nope' does not exist in local Qdrant"):
        retriever.warm_up()


def test_pipeline_yaml_round_trip(tiny_index: Path) -> None:
    pipeline = Pipeline()
    pipeline.add_component("retriever", MPRetriever(collection="tiny", qdrant_path=str(tiny_index), top_k=3))
    text = pipeline.dumps()
    loaded = Pipeline.loads(text, allowed_modules=ALLOWED_MODULES)
    assert loaded.dumps() == text
    try:
        result = loaded.run({"query": "coffee tea sleep"})
        assert len(result["retriever"]["documents"]) == 3
    finally:
        loaded.get_component("retriever").close()


LONG_QUERY = "cancer cell diet " * 15  # 47 tokens: longer than the training default, 32


def test_queries_are_embedded_whole_by_default_and_cut_ones_counted(
    tiny_index: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mpretriever.model.bi_encoder")
    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index), top_k=60)
    try:
        whole = retriever.run(query=LONG_QUERY)["documents"]
        encoder = retriever.encoder
        assert encoder is not None and encoder.config.query_max_length == 128  # the tiny BERT's maximum
        assert len(encoder.tokenize([LONG_QUERY], "query")[0]) == 47
    finally:
        retriever.close()
    assert not caplog.records

    retriever = MPRetriever(collection="tiny", qdrant_path=str(tiny_index), top_k=60, query_max_length=8)
    try:
        cut = retriever.run(query=LONG_QUERY)["documents"]
    finally:
        retriever.close()
    assert [r.getMessage() for r in caplog.records] == ["1 of 1 query longer than 8 tokens was truncated"]
    assert [d.score for d in cut] != [d.score for d in whole]


def test_a_collection_records_its_lengths(tiny_run: Path, tiny_beir: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant")
    indexer = BiEncoder.from_pretrained(tiny_run, query_max_length=16, passage_max_length=24)
    client = QdrantSettings(path=path).connect()
    try:
        ensure_collection(client, "short", collection_manifest(indexer, str(tiny_run)))
        index_corpus(indexer, BeirDataset(tiny_beir).corpus.select(range(5)), client, "short", show_progress=False)
        with pytest.raises(CollectionMismatchError, match="passage_max_length"):  # no mixed passage lengths
            ensure_collection(client, "short", collection_manifest(BiEncoder.from_pretrained(tiny_run), str(tiny_run)))
    finally:
        client.close()
    for asked, used in ((None, 16), (40, 40)):  # the collection's query length unless the search asks another
        retriever = MPRetriever(collection="short", qdrant_path=path, query_max_length=asked)
        try:
            assert len(retriever.run(query="heart")["documents"]) == 5
            encoder = retriever.encoder
            assert encoder is not None
            assert (encoder.config.query_max_length, encoder.config.passage_max_length) == (used, 24)
        finally:
            retriever.close()
