"""Versioned collections behind an alias: built aside, checked complete, switched atomically, rolled back."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from mpretriever.data import BeirDataset
from mpretriever.haystack import MPRetriever
from mpretriever.index import CollectionMismatchError, QdrantSettings, index_dataset, read_manifest
from mpretriever.index import indexer as indexer_module
from mpretriever.index.run import IncompleteIndexError
from mpretriever.index.versions import (
    AliasError,
    alias_target,
    delete,
    describe,
    prune,
    real_collections,
    rollback,
    switch_alias,
    versions,
)
from mpretriever.model import BiEncoder


@pytest.fixture
def settings(tmp_path: Path) -> QdrantSettings:
    return QdrantSettings(path=str(tmp_path / "qdrant"))


@pytest.fixture
def corpus(tiny_beir: Path):
    return BeirDataset(tiny_beir).corpus


@pytest.fixture
def first(tiny_run: Path) -> Path:
    return tiny_run


@pytest.fixture(scope="module")
def second(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model (another pooling: another fingerprint), saved as a run."""
    directory = tmp_path_factory.mktemp("second") / "run"
    BiEncoder.from_pretrained(tiny_model_dir, pooling="cls", normalize=True).save(directory)
    return directory


def _index(run: Path, corpus, settings: QdrantSettings, collection: str = "docs", alias: bool = True, **options):
    """Index with the model saved at ``run`` (which the collection records) behind the alias ``docs``."""
    encoder = BiEncoder.from_pretrained(run)
    return index_dataset(
        encoder, corpus, "tiny", settings, collection, str(run), alias=alias, show_progress=False, workers=1, **options
    )


def _fingerprint(run: Path) -> str:
    return BiEncoder.from_pretrained(run).fingerprint()


def test_a_new_model_is_built_aside_and_the_alias_switched(first, second, corpus, settings) -> None:
    one = _index(first, corpus, settings)
    assert one.created and one.switched and one.previous is None
    assert one.collection == f"docs-{_fingerprint(first)[:12]}"
    again = _index(first, corpus, settings)  # the same model: the served collection, updated in place
    assert (again.collection, again.created, again.switched, again.stats.written) == (one.collection, False, False, 0)
    two = _index(second, corpus, settings)
    assert two.created and two.switched and two.previous == one.collection
    client = settings.connect()
    try:
        assert alias_target(client, "docs") == two.collection
        assert client.count("docs", exact=True).count == 60
        assert read_manifest(client, "docs")["fingerprint"] == _fingerprint(second)  # the manifest, via the alias
        assert versions(client, "docs") == [one.collection, two.collection]
        assert client.count(one.collection, exact=True).count == 60  # kept, for a rollback
    finally:
        client.close()


def test_readers_of_the_alias_follow_the_switch(first, second, corpus, settings) -> None:
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    _index(first, corpus, settings)
    _index(second, corpus, settings)
    query = BiEncoder.from_pretrained(second).embed_texts(["cancer cell diet"], "query")[0].tolist()
    store = QdrantDocumentStore(path=settings.path, index="docs", embedding_dim=32, similarity="cosine")
    try:
        assert store.count_documents() == 60
        found = QdrantEmbeddingRetriever(store, top_k=5).run(query_embedding=query)["documents"]
    finally:
        store.close()
    retriever = MPRetriever(collection="docs", qdrant_path=settings.path, top_k=5)  # the model the alias records
    try:
        ours = retriever.run(query="cancer cell diet")["documents"]
    finally:
        retriever.close()
    assert [d.id for d in ours] == [d.id for d in found] and len(ours) == 5


def test_a_warm_retriever_follows_the_alias_to_the_new_model(first, second, corpus, settings, monkeypatch) -> None:
    one, two = _index(first, corpus, settings).collection, _index(second, corpus, settings).collection
    retriever = MPRetriever(collection="docs", qdrant_path=settings.path, top_k=5, follow_alias_s=0)
    try:
        retriever.run(query="cancer cell diet")
        assert retriever.served_collection == two and retriever.encoder.fingerprint() == _fingerprint(second)
        client = retriever.client  # an embedded Qdrant admits one client: switch through the retriever's
        rollback(client, "docs")
        followed = retriever.run(query="cancer cell diet")["documents"]
        assert retriever.served_collection == one and retriever.encoder.fingerprint() == _fingerprint(first)
        loads = []
        monkeypatch.setattr(BiEncoder, "from_pretrained", lambda *a, **k: loads.append(a))  # must not be called
        switch_alias(client, "docs", two)
        retriever.run(query="cancer cell diet")
        assert retriever.served_collection == two and loads == []  # the model served before was kept
        monkeypatch.undo()

        retriever.follow_alias_s = 3600  # not due: only a search that fails makes it look again
        switch_alias(client, "docs", one)
        client.delete_collection(two)
        after_delete = retriever.run(query="cancer cell diet")["documents"]
        assert retriever.served_collection == one and len(after_delete) == 5
    finally:
        retriever.close()
    pinned = MPRetriever(collection=one, qdrant_path=settings.path, top_k=5)
    try:
        assert [d.id for d in pinned.run(query="cancer cell diet")["documents"]] == [d.id for d in after_delete]
    finally:
        pinned.close()
    assert [d.id for d in followed] == [d.id for d in after_delete]


def test_a_retriever_that_does_not_follow_keeps_its_collection(first, second, corpus, settings) -> None:
    one, two = _index(first, corpus, settings).collection, _index(second, corpus, settings).collection
    retriever = MPRetriever(collection="docs", qdrant_path=settings.path, follow_alias_s=None)
    try:
        retriever.warm_up()
        rollback(retriever.client, "docs")
        retriever.run(query="cancer")
        assert retriever.served_collection == two and alias_target(retriever.client, "docs") == one
    finally:
        retriever.close()


def test_a_retriever_with_an_explicit_model_stays_on_the_collection_it_can_search(
    first, second, corpus, settings
) -> None:
    _index(first, corpus, settings)
    two = _index(second, corpus, settings).collection
    retriever = MPRetriever(collection="docs", model=str(second), qdrant_path=settings.path, follow_alias_s=0)
    try:
        retriever.warm_up()
        rollback(retriever.client, "docs")  # to the first model's collection, which model= cannot search
        assert len(retriever.run(query="cancer")["documents"]) == 10
        assert retriever.served_collection == two
    finally:
        retriever.close()


def test_an_interrupted_build_resumes_and_the_alias_moves_only_when_complete(
    first, second, corpus, settings, monkeypatch
) -> None:
    one = _index(first, corpus, settings)
    real_upsert = indexer_module.upsert_with_retry
    calls = {"n": 0}

    def failing_upsert(client, collection, points):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # the process dies while writing
        real_upsert(client, collection, points)

    monkeypatch.setattr(indexer_module, "upsert_with_retry", failing_upsert)
    monkeypatch.setattr(indexer_module, "index_corpus", partial(indexer_module.index_corpus, chunk_size=16))
    with pytest.raises(KeyboardInterrupt):
        _index(second, corpus, settings)
    monkeypatch.setattr(indexer_module, "upsert_with_retry", real_upsert)
    client = settings.connect()
    try:
        assert alias_target(client, "docs") == one.collection  # still the complete one
    finally:
        client.close()
    resumed = _index(second, corpus, settings)
    assert not resumed.created and resumed.switched and resumed.previous == one.collection
    assert (resumed.stats.already_present, resumed.stats.written) == (16, 44)  # the first chunk was not redone


def test_an_incomplete_version_never_takes_the_alias(first, second, corpus, settings, monkeypatch) -> None:
    one = _index(first, corpus, settings)
    monkeypatch.setattr(indexer_module, "write_points", lambda *args, **kwargs: None)  # points lost on the way
    with pytest.raises(IncompleteIndexError, match="lacks 60 of the corpus's 60 passages"):
        _index(second, corpus, settings)
    client = settings.connect()
    try:
        assert alias_target(client, "docs") == one.collection
    finally:
        client.close()


def test_recreate_builds_a_new_version_aside(first, corpus, settings) -> None:
    one = _index(first, corpus, settings)
    rebuilt = _index(first, corpus, settings, recreate=True)
    assert (
        rebuilt.created and rebuilt.collection.startswith(one.collection + "-") and rebuilt.previous == one.collection
    )
    assert rebuilt.stats.written == 60


def test_recreate_without_an_alias_is_refused_for_an_existing_collection(first, corpus, settings) -> None:
    _index(first, corpus, settings, collection="plain", alias=False)
    with pytest.raises(CollectionMismatchError, match="--recreate would empty collection 'plain'"):
        _index(first, corpus, settings, collection="plain", alias=False, recreate=True)
    with pytest.raises(AliasError, match="'plain' is a collection, not an alias"):
        _index(first, corpus, settings, collection="plain")


def test_rollback_prune_and_delete(first, second, corpus, settings) -> None:
    one = _index(first, corpus, settings)
    two = _index(second, corpus, settings)
    three = _index(first, corpus, settings, recreate=True)
    client = settings.connect()
    try:
        assert rollback(client, "docs") == (three.collection, two.collection)
        assert rollback(client, "docs") == (two.collection, one.collection)
        with pytest.raises(AliasError, match="nothing to roll back to"):
            rollback(client, "docs")
        with pytest.raises(AliasError, match="alias docs points at"):
            delete(client, one.collection)
        assert prune(client, "docs", keep=2) == [two.collection]  # the oldest unserved; the served one stays
        assert set(real_collections(client)) == {one.collection, three.collection}
        served = [info for info in describe(client) if info.served_by]
        assert [(info.name, info.served_by, info.points, info.alias) for info in served] == [
            (one.collection, ("docs",), 60, "docs")
        ]
        delete(client, three.collection)
        with pytest.raises(AliasError, match="there is no alias 'nope'"):
            rollback(client, "nope")
    finally:
        client.close()
