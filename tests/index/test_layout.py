"""The server layout of a collection (shards, replicas, on-disk vectors, HNSW, quantisation): the request that
creates it, what the manifest records, and how it decides between writing in place and building a new version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from mpretriever.data import BeirDataset
from mpretriever.index import CollectionLayout, CollectionMismatchError, QdrantSettings, index_dataset, read_manifest
from mpretriever.index.layout import layout_differs, recorded_layout
from mpretriever.index.versions import describe
from mpretriever.model import BiEncoder
from tests.cli.test_cli import run_cli


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every create_collection request (passed on to the embedded Qdrant)."""
    calls: list[dict[str, Any]] = []
    original = QdrantClient.create_collection

    def recording(self: QdrantClient, collection_name: str, **arguments: Any) -> bool:
        calls.append({"collection": collection_name, **arguments})
        return original(self, collection_name, **arguments)

    monkeypatch.setattr(QdrantClient, "create_collection", recording)
    return calls


def _index(tiny_run: Path, tiny_beir: Path, qdrant: QdrantSettings, collection: str, **options: Any):
    return index_dataset(
        BiEncoder.from_pretrained(tiny_run), BeirDataset(tiny_beir).corpus, "tiny", qdrant, collection,
        str(tiny_run), show_progress=False, workers=1, **options,
    )  # fmt: skip


def test_the_default_layout_sends_and_records_nothing() -> None:
    layout = CollectionLayout()
    assert layout.is_default() and layout.record() == {} and layout.describe() == "Qdrant's defaults"
    arguments = layout.create_arguments(384, models.Distance.COSINE)
    assert list(arguments) == ["vectors_config"]
    assert arguments["vectors_config"] == models.VectorParams(size=384, distance=models.Distance.COSINE)


def test_a_layout_becomes_the_create_request() -> None:
    layout = CollectionLayout(
        shard_number=6, replication_factor=2, on_disk=True, hnsw_m=32, hnsw_ef_construct=200, quantization="int8"
    )
    arguments = layout.create_arguments(768, models.Distance.DOT)
    assert arguments["vectors_config"].on_disk is True and arguments["vectors_config"].size == 768
    assert (arguments["shard_number"], arguments["replication_factor"]) == (6, 2)
    assert arguments["hnsw_config"] == models.HnswConfigDiff(m=32, ef_construct=200)
    scalar = arguments["quantization_config"].scalar
    assert (scalar.type, scalar.quantile, scalar.always_ram) == (models.ScalarType.INT8, 0.99, True)
    binary = CollectionLayout(quantization="binary").create_arguments(1024, models.Distance.COSINE)
    assert binary["quantization_config"].binary.always_ram is True
    assert CollectionLayout.from_record(layout.record()) == layout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shard_number": 0}, "shard_number must be at least 1"),
        ({"replication_factor": 0}, "replication_factor must be at least 1"),
        ({"hnsw_m": -1}, "hnsw_m must be at least 0"),
        ({"quantization": "int4"}, "quantization must be one of none, int8, binary"),
    ],
)
def test_impossible_layouts_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CollectionLayout(**options)


def test_asking_for_no_layout_accepts_any_and_asking_for_one_needs_it() -> None:
    int8 = {"layout": {"quantization": "int8"}}
    assert not layout_differs(int8, {}) and not layout_differs(int8, int8) and not layout_differs(None, {})
    assert layout_differs({}, int8) and layout_differs({"layout": {"quantization": "binary"}}, int8)
    assert recorded_layout({"layout": {"shard_number": 3, "unknown": 1}}) == CollectionLayout(shard_number=3)


def test_the_indexer_creates_the_collection_with_its_layout_and_records_it(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path, created: list[dict[str, Any]], caplog
) -> None:
    qdrant = QdrantSettings(path=str(tmp_path / "qdrant"))
    layout = CollectionLayout(shard_number=2, on_disk=True, quantization="int8")
    outcome = _index(tiny_run, tiny_beir, qdrant, "docs", layout=layout)
    assert "an embedded Qdrant ignores the layout (shard_number=2, on_disk=True, quantization=int8)" in caplog.text
    (request,) = created
    assert request["collection"] == "docs" and request["shard_number"] == 2
    assert request["vectors_config"].on_disk is True and request["quantization_config"].scalar.type == "int8"
    assert outcome.stats.points_in_collection == 60
    client = qdrant.connect()
    try:
        assert read_manifest(client, "docs")["layout"] == {"shard_number": 2, "on_disk": True, "quantization": "int8"}
    finally:
        client.close()
    again = _index(tiny_run, tiny_beir, qdrant, "docs")  # no layout asked for: the collection as it is
    assert (again.created, again.stats.written) == (False, 0)
    with pytest.raises(CollectionMismatchError, match=r"created with shard_number=2.*not quantization=binary"):
        _index(tiny_run, tiny_beir, qdrant, "docs", layout=CollectionLayout(quantization="binary"))


def test_another_layout_behind_an_alias_is_a_new_version(tiny_run: Path, tiny_beir: Path, tmp_path: Path) -> None:
    qdrant = QdrantSettings(path=str(tmp_path / "qdrant"))
    first = _index(tiny_run, tiny_beir, qdrant, "docs", alias=True)
    same = _index(tiny_run, tiny_beir, qdrant, "docs", alias=True)
    assert same.collection == first.collection and same.stats.written == 0
    quantised = _index(tiny_run, tiny_beir, qdrant, "docs", alias=True, layout=CollectionLayout(quantization="int8"))
    assert quantised.created and quantised.switched and quantised.previous == first.collection
    assert quantised.collection.startswith(first.collection + "-")  # the same model's name, stamped
    client = qdrant.connect()
    try:
        assert read_manifest(client, "docs")["layout"] == {"quantization": "int8"}
        assert "layout" not in read_manifest(client, first.collection)  # manifests as before layouts existed
        layouts = {info.name: info.layout for info in describe(client)}
        assert layouts == {first.collection: None, quantised.collection: "quantization=int8"}
    finally:
        client.close()


def test_mpr_index_takes_the_layout_options(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path, created: list[dict[str, Any]], capsys, monkeypatch
) -> None:
    qdrant = str(tmp_path / "qdrant")
    code, _, err = run_cli(
        [
            "index", "--data", str(tiny_beir), "--model", str(tiny_run), "--collection", "docs", "--qdrant-path",
            qdrant, "--shards", "3", "--replicas", "2", "--hnsw-m", "8", "--hnsw-ef-construct", "64",
            "--quantization", "binary",
        ],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    (request,) = created
    assert (request["shard_number"], request["replication_factor"]) == (3, 2)
    assert request["hnsw_config"] == models.HnswConfigDiff(m=8, ef_construct=64)
    assert isinstance(request["quantization_config"], models.BinaryQuantization)
    code, _, err = run_cli(["index", "--data", str(tiny_beir), "--shards", "0"], capsys, monkeypatch)
    assert code == 2 and "--shards" in err
