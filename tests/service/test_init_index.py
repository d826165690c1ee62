"""The demo's init step: the collection holds exactly the sample dataset's corpus afterwards; and mpr serve."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mpretriever.index import QdrantSettings, point_id, read_manifest
from mpretriever.service.init_index import main
from tests.cli.test_cli import run_cli
from tests.conftest import write_jsonl


def run_init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **environment: str
) -> tuple[int, str]:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["init_index"])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    captured = capsys.readouterr()
    output = f"{code if isinstance(code, str) else ''} {captured.err}"
    return (code if isinstance(code, int) else 1), " ".join(output.split())


def test_indexes_a_missing_collection_once(
    tiny_beir: Path, tiny_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    qdrant = str(tmp_path / "qdrant")
    environment = {
        "MPR_INDEX_DATA": str(tiny_beir),
        "MPR_MODEL": str(tiny_run),
        "MPR_COLLECTION": "demo",
        "MPR_QDRANT_PATH": qdrant,
        "MPR_INDEX_MAX_DOCS": "40",
    }
    code, output = run_init(monkeypatch, capsys, **environment)
    assert code == 0, output
    assert "created collection 'demo-" in output and "40 written" in output
    assert "alias 'demo' now serves it" in output
    client = QdrantSettings(path=qdrant).connect()
    assert client.count("demo").count == 40
    client.close()

    code, output = run_init(monkeypatch, capsys, **environment)
    assert code == 0 and "written" not in output
    assert "already holds the 40 documents, unchanged: nothing to index" in output
    assert sys.argv == ["init_index"], "the indexer is called as a library, not through mpr's command line"

    code, output = run_init(monkeypatch, capsys, **{**environment, "MPR_INDEX_MAX_DOCS": ""})  # the rest of it
    assert code == 0 and "20 written, 40 already present, 60 points" in output


def test_missing_data_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("MPR_INDEX_DATA", raising=False)
    code, output = run_init(monkeypatch, capsys, MPR_QDRANT_PATH=str(tmp_path / "q"))
    assert code != 0 and "set MPR_INDEX_DATA" in output
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(tmp_path / "absent"))
    assert code != 0 and "dataset directory not found" in output and "README" in output


def test_a_changed_or_shrunk_corpus_is_not_called_complete(
    tiny_beir: Path, tiny_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    qdrant = str(tmp_path / "qdrant")
    environment = {"MPR_MODEL": str(tiny_run), "MPR_COLLECTION": "demo", "MPR_QDRANT_PATH": qdrant}
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(tiny_beir), **environment)
    assert code == 0 and "60 written" in output

    edited = tmp_path / "edited" / tiny_beir.name  # the same dataset, a later version of it
    shutil.copytree(tiny_beir, edited)
    documents = [json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    documents[0]["text"], documents[1]["title"] = "coffee and tea", "sleep"
    write_jsonl(edited / "corpus.jsonl", documents[:55])
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(edited), **environment)
    assert code == 0, output
    assert "2 written, 53 already present, 55 points in the collection" in output
    assert "2 of the written re-embedded" in output and "5 points whose documents left the corpus deleted" in output
    client = QdrantSettings(path=qdrant).connect()
    assert client.retrieve("demo", ids=[point_id(documents[0]["_id"])])[0].payload["content"] == "coffee and tea"
    assert client.retrieve("demo", ids=[point_id(document["_id"]) for document in documents[55:]]) == []
    client.close()


def test_the_collection_model_is_kept_and_another_corpus_refused(
    tiny_beir: Path, tiny_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    qdrant = str(tmp_path / "qdrant")
    environment = {"MPR_COLLECTION": "demo", "MPR_QDRANT_PATH": qdrant, "MPR_INDEX_MAX_DOCS": "10"}
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(tiny_beir), MPR_MODEL=str(tiny_run), **environment)
    assert code == 0 and "10 written" in output
    monkeypatch.delenv("MPR_MODEL")
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(tiny_beir), **environment)
    assert code == 0 and "nothing to index" in output, "without MPR_MODEL: the model the collection records"

    other = tmp_path / "other"
    shutil.copytree(tiny_beir, other)
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(other), **environment)
    assert code != 0 and f"holds corpus {tiny_beir.name}, not other" in output
    client = QdrantSettings(path=qdrant).connect()
    assert read_manifest(client, "demo")["corpora"] == [tiny_beir.name] and client.count("demo").count == 10
    client.close()


def test_a_retrained_model_is_indexed_aside_and_swapped_in(
    tiny_beir: Path, tiny_run: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from mpretriever.index.versions import alias_target, real_collections
    from mpretriever.model import BiEncoder

    retrained = tmp_path / "retrained"
    BiEncoder.from_pretrained(tiny_model_dir, pooling="cls", normalize=True).save(retrained)
    qdrant = str(tmp_path / "qdrant")
    environment = {"MPR_INDEX_DATA": str(tiny_beir), "MPR_COLLECTION": "demo", "MPR_QDRANT_PATH": qdrant}
    code, output = run_init(monkeypatch, capsys, MPR_MODEL=str(tiny_run), **environment)
    assert code == 0, output
    code, output = run_init(monkeypatch, capsys, MPR_MODEL=str(retrained), **environment)
    assert code == 0 and "60 written" in output and "mpr collections rollback demo goes back" in output, output
    client = QdrantSettings(path=qdrant).connect()
    try:
        assert read_manifest(client, "demo")["model"] == str(retrained.resolve())
        assert len(real_collections(client)) == 2 and alias_target(client, "demo") in real_collections(client)
    finally:
        client.close()


def test_mpr_serve_help(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["serve", "--help"], capsys, monkeypatch)
    assert code == 0
    for option in ("--host", "--port", "--collection", "--pipeline", "--threads", "--qdrant-url", "--qdrant-path"):
        assert option in out
