"""The ONNX Runtime backends: same vectors as PyTorch (float32), close ones (int8), cached atomic exports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from mpretriever.data import BeirDataset
from mpretriever.index import (
    QdrantSettings,
    check_compatible,
    collection_manifest,
    ensure_collection,
    index_corpus,
    read_manifest,
)
from mpretriever.model import BiEncoder, onnx_backend

TEXTS = [
    "statin",
    "cancer cell risk of the heart",
    "vitamin and fruit diet " * 40,  # longer than the passage length: truncated
    "coffee tea milk egg fish meat sugar fat protein asthma",
    "blood",
    "sleep brain study patients with breast cancer and cholesterol",
    "the",
]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("mpr-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPR_CACHE_DIR", str(directory))
        yield directory


@pytest.fixture(scope="module")
def reference(tiny_run: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_run)


def encode(encoder: BiEncoder, texts: list[str], batch_size: int = 3) -> np.ndarray:
    return encoder.model.encode_document(texts, batch_size=batch_size, convert_to_numpy=True)


def test_float_graph_reproduces_pytorch_for_any_batch_and_length(reference: BiEncoder, tiny_run: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_run, backend="onnx")
    assert encoder.backend == "onnx"
    assert isinstance(encoder.transformer.model, onnx_backend.OnnxTransformerModel)
    for batch_size in (1, 3, len(TEXTS)):
        np.testing.assert_allclose(encode(encoder, TEXTS, batch_size), encode(reference, TEXTS, batch_size), atol=1e-5)
    queries = encoder.model.encode_query(["heart risk"], convert_to_numpy=True)
    np.testing.assert_allclose(queries, reference.model.encode_query(["heart risk"], convert_to_numpy=True), atol=1e-5)
    np.testing.assert_allclose(encoder.embed_texts(["heart risk"], "query").numpy(), queries, atol=1e-5)


def test_int8_graph_is_quantised_but_close(reference: BiEncoder, tiny_run: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_run, backend="onnx-int8")
    vectors, exact = encode(encoder, TEXTS), encode(reference, TEXTS)
    cosine = (vectors * exact).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(exact, axis=1)
    assert cosine.min() > 0.95
    assert np.abs(vectors - exact).max() > 1e-4  # really a different (quantised) graph
    directory = onnx_backend.export_directory(reference.fingerprint())
    operators = {node.op_type for node in onnx.load(str(directory / onnx_backend.INT8_FILE)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= operators


def test_switching_backend_keeps_the_fingerprint(reference: BiEncoder, tiny_run: Path) -> None:
    fingerprint = reference.fingerprint()
    assert BiEncoder.from_pretrained(tiny_run, backend="onnx-int8").fingerprint() == fingerprint


def test_export_is_cached_and_reused(reference: BiEncoder, tiny_run: Path, monkeypatch) -> None:
    BiEncoder.from_pretrained(tiny_run, backend="onnx")
    directory = onnx_backend.export_directory(reference.fingerprint())
    report = directory / onnx_backend.REPORT_FILE
    assert report.is_file()
    assert not [path for path in directory.parent.iterdir() if path.name.startswith(".")]  # no staging left

    def fail(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "_build", fail)
    BiEncoder.from_pretrained(tiny_run, backend="onnx-int8")


def test_an_incomplete_export_is_never_used(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path))
    torch_encoder = BiEncoder.from_pretrained(tiny_model_dir)
    directory = onnx_backend.export_directory(torch_encoder.fingerprint())
    directory.mkdir(parents=True)
    (directory / onnx_backend.FLOAT_FILE).write_bytes(b"half-written")  # as left by a crash, without the report
    encoder = BiEncoder.from_pretrained(tiny_model_dir, backend="onnx")
    np.testing.assert_allclose(encode(encoder, TEXTS), encode(torch_encoder, TEXTS), atol=1e-5)
    assert (directory / onnx_backend.REPORT_FILE).is_file()


def test_a_failed_export_leaves_nothing_behind(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path))

    def broken_export(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_backend.torch.onnx, "export", broken_export)
    with pytest.raises(onnx_backend.OnnxExportError, match=r"could not export .*unsupported operator"):
        BiEncoder.from_pretrained(tiny_model_dir, backend="onnx")
    assert not any((tmp_path / "onnx").iterdir())


def test_onnx_encoders_cannot_be_saved_or_switched_back(tiny_run: Path, tmp_path: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_run, backend="onnx")
    with pytest.raises(ValueError, match="cannot be saved"):
        encoder.save(tmp_path / "out")
    with pytest.raises(ValueError, match="already runs on the onnx backend"):
        encoder.use_backend("onnx-int8")
    with pytest.raises(ValueError, match="unknown backend"):
        BiEncoder.from_pretrained(tiny_run, backend="tensorrt")  # type: ignore[arg-type]


def test_index_with_int8_then_search_with_torch(reference: BiEncoder, tiny_run: Path, tiny_beir: Path) -> None:
    encoder = BiEncoder.from_pretrained(tiny_run, backend="onnx-int8")
    corpus = BeirDataset(tiny_beir).corpus
    client = QdrantSettings(path=":memory:").connect()
    ensure_collection(client, "docs", collection_manifest(encoder, str(tiny_run)))
    with pytest.raises(ValueError, match="needs the torch backend"):
        index_corpus(encoder, corpus, client, "docs", workers=2, show_progress=False)
    stats = index_corpus(encoder, corpus, client, "docs", show_progress=False)
    assert stats.points_in_collection == len(corpus)
    manifest = read_manifest(client, "docs")
    assert manifest is not None and manifest["backend"] == "onnx-int8"
    check_compatible(client, "docs", collection_manifest(reference, str(tiny_run)))  # searching with torch: accepted
    query = reference.model.encode_query(["cancer cell"], convert_to_numpy=True)[0]
    hits = client.query_points("docs", query=query.tolist(), limit=3).points
    assert len(hits) == 3 and hits[0].score > 0.5
