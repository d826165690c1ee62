"""``mpr index``, ``mpr search`` and ``mpr pipeline run`` end to end on embedded Qdrant."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mpretriever.index import QdrantSettings
from mpretriever.model import BiEncoder
from tests.cli.test_cli import run_cli
from tests.conftest import REPO_ROOT, write_jsonl


def test_index_then_search(nfcorpus_sample: Path, tiny_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    qdrant = str(tmp_path / "qdrant")
    args = [
        "index",
        "--data",
        str(nfcorpus_sample),
        "--model",
        str(tiny_run),
        "--collection",
        "nf",
        "--qdrant-path",
        qdrant,
        "--max-docs",
        "120",
    ]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert "created collection 'nf'" in err and "120 written" in err
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0 and "0 written, 120 already present, 120 points" in " ".join(err.split())

    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(
        ["search", "vitamin d and cancer", "--collection", "nf", "--qdrant-path", qdrant, "--top-k", "3"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│ ") and "MED-" in line]
    assert len(rows) == 3

    code, out, err = run_cli(
        [
            "pipeline",
            "run",
            str(REPO_ROOT / "pipelines" / "retrieval.yml"),
            "--query",
            "vitamin d",
            "--set",
            "retriever.collection=nf",
            "--set",
            f"retriever.qdrant_path={qdrant}",
            "--set",
            "retriever.top_k=2",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    documents = json.loads(out)["retriever"]["documents"]
    assert len(documents) == 2 and all(d["id"].startswith("MED-") for d in documents)


def test_index_refuses_another_model(
    tiny_beir: Path, tiny_run: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    qdrant = str(tmp_path / "qdrant")
    base = ["index", "--data", str(tiny_beir), "--collection", "c", "--qdrant-path", qdrant]
    assert run_cli([*base, "--model", str(tiny_run)], capsys, monkeypatch)[0] == 0
    code, _, err = run_cli([*base, "--model", str(tiny_model_dir)], capsys, monkeypatch)
    assert code == 2 and "was indexed with model" in err and "--alias NAME" in " ".join(err.split())
    code, _, err = run_cli([*base, "--model", str(tiny_model_dir), "--recreate"], capsys, monkeypatch)
    assert code == 2 and "--recreate would empty collection 'c' while it may be searched" in " ".join(err.split())


def test_index_behind_an_alias_then_switch_and_roll_back(
    tiny_beir: Path, tiny_run: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    qdrant = str(tmp_path / "qdrant")
    base = ["index", "--data", str(tiny_beir), "--alias", "docs", "--qdrant-path", qdrant]
    code, _, err = run_cli([*base, "--model", str(tiny_run)], capsys, monkeypatch)
    assert code == 0 and "alias 'docs' now serves it (it served nothing)" in " ".join(err.split()), err
    code, _, err = run_cli([*base, "--model", str(tiny_model_dir)], capsys, monkeypatch)
    assert code == 0 and "mpr collections rollback docs goes back" in " ".join(err.split()), err
    listing = ["collections", "list", "--qdrant-path", qdrant]
    code, out, _ = run_cli(listing, capsys, monkeypatch)
    assert code == 0 and out.count("docs-") == 2 and "60" in out
    code, out, err = run_cli(
        ["search", "cancer", "--collection", "docs", "--qdrant-path", qdrant, "--top-k", "3"], capsys, monkeypatch
    )
    assert code == 0 and "'docs'" in out, err
    evaluation, mined = tmp_path / "eval", tmp_path / "mined.jsonl"
    code, _, err = run_cli(
        ["eval", "--data", str(tiny_beir), "--split", "test", "--collection", "docs", "--qdrant-path", qdrant,
         "--output", str(evaluation)],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((evaluation / "metrics.json").read_text())
    second = BiEncoder.from_pretrained(tiny_model_dir).fingerprint()  # the model the alias serves now
    assert metrics["collection"] == "docs" and metrics["model_fingerprint"] == second
    assert metrics["served_collection"] == f"docs-{second[:12]}"  # which version was evaluated
    code, _, err = run_cli(
        ["mine", "--data", str(tiny_beir), "--method", "dense", "--collection", "docs", "--qdrant-path", qdrant,
         "--output", str(mined)],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert len(mined.read_text().splitlines()) == 12  # every training query, mined through the alias
    code, _, err = run_cli(["collections", "rollback", "docs", "--qdrant-path", qdrant], capsys, monkeypatch)
    assert code == 0 and "now serves" in err
    code, _, err = run_cli(["collections", "rollback", "docs", "--qdrant-path", qdrant], capsys, monkeypatch)
    assert code == 2 and "nothing to roll back to" in " ".join(err.split())
    code, _, err = run_cli(
        ["collections", "prune", "docs", "--keep", "1", "--qdrant-path", qdrant], capsys, monkeypatch
    )
    assert code == 0 and "deleted 1 collections of 'docs'" in err
    code, _, err = run_cli(
        ["index", "--data", str(tiny_beir), "--alias", "a", "--collection", "c", "--qdrant-path", qdrant],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "not both" in err


def test_unreachable_server_is_reported_within_seconds(capsys, monkeypatch) -> None:
    started = time.monotonic()
    code, _, err = run_cli(
        ["search", "x", "--collection", "c", "--qdrant-url", "http://127.0.0.1:1", "--timeout", "2"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "cannot reach Qdrant at http://127.0.0.1:1" in err
    assert time.monotonic() - started < 10
    assert "Traceback" not in err


def test_malformed_corpus_is_reported_and_nothing_is_written(
    tiny_run: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    data = tmp_path / "data"
    write_jsonl(data / "corpus.jsonl", [{"_id": "d1", "text": "heart"}, {"_id": "d2", "text": "cancer"}])
    write_jsonl(data / "queries.jsonl", [{"_id": "q1", "text": "heart"}])
    with (data / "corpus.jsonl").open("a") as handle:
        handle.write('{"_id": "d3", "text": \n')
    qdrant = str(tmp_path / "qdrant")
    code, _, err = run_cli(
        ["index", "--data", str(data), "--model", str(tiny_run), "--collection", "c", "--qdrant-path", qdrant],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "corpus.jsonl:3: invalid JSON" in " ".join(err.split())
    client = QdrantSettings(path=qdrant).connect()
    try:
        assert not client.collection_exists("c"), "the corpus is validated before anything is written"
    finally:
        client.close()


def test_collection_records_local_models_by_absolute_path(tiny_run: Path, monkeypatch) -> None:
    from mpretriever.cli.index import model_reference

    monkeypatch.chdir(tiny_run.parent)
    assert model_reference("run") == str(tiny_run.resolve())
    assert model_reference("org/some-hub-model") == "org/some-hub-model"
    assert model_reference(None) == "sentence-transformers/all-MiniLM-L6-v2"


def test_index_and_search_with_the_onnx_backends(
    tiny_beir: Path, tiny_run: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    qdrant = str(tmp_path / "qdrant")
    index = ["index", "--data", str(tiny_beir), "--model", str(tiny_run), "--collection", "t", "--qdrant-path", qdrant]
    code, _, err = run_cli([*index, "--backend", "onnx-int8"], capsys, monkeypatch)
    assert code == 0, err
    client = QdrantSettings(path=qdrant).connect()
    manifest = client.get_collection("t").config.metadata["mpretriever"]
    client.close()
    assert manifest["backend"] == "onnx-int8"
    assert any((tmp_path / "cache" / "onnx").iterdir())
    search = ["search", "cancer cell", "--collection", "t", "--qdrant-path", qdrant, "--top-k", "2"]
    code, out, err = run_cli([*search, "--backend", "onnx"], capsys, monkeypatch)
    assert code == 0, err
    assert len([line for line in out.splitlines() if line.startswith("│ ")]) >= 2
    code, _, err = run_cli([*index, "--backend", "tensorrt"], capsys, monkeypatch)
    assert code == 2 and "tensorrt" in err
