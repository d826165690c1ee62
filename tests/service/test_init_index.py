"""The demo's init step: mpr index the sample dataset unless the collection already holds it; and mpr serve."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpretriever.index import QdrantSettings
from mpretriever.service import ServiceSettings
from mpretriever.service.init_index import index_arguments, main
from tests.cli.test_cli import run_cli


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
    assert "created collection 'demo'" in output and "40 written" in output
    client = QdrantSettings(path=qdrant).connect()
    assert client.count("demo").count == 40
    client.close()

    code, output = run_init(monkeypatch, capsys, **environment)
    assert code == 0 and "written" not in output
    assert "already holds 40 points: nothing to index" in output

    code, output = run_init(monkeypatch, capsys, **{**environment, "MPR_INDEX_MAX_DOCS": ""})  # the rest of it
    assert code == 0 and "20 written, 40 already present, 60 points" in output


def test_missing_data_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("MPR_INDEX_DATA", raising=False)
    code, output = run_init(monkeypatch, capsys, MPR_QDRANT_PATH=str(tmp_path / "q"))
    assert code != 0 and "set MPR_INDEX_DATA" in output
    code, output = run_init(monkeypatch, capsys, MPR_INDEX_DATA=str(tmp_path / "absent"))
    assert code != 0 and "dataset directory not found" in output and "README" in output


def test_server_mode_passes_the_api_key_by_variable_name_only() -> None:
    settings = ServiceSettings(qdrant=QdrantSettings(url="http://qdrant:6333", api_key="secret-key"), collection="c")
    arguments = index_arguments(settings, "/data/sample", None)
    assert arguments[:5] == ["index", "--data", "/data/sample", "--collection", "c"]
    assert "--qdrant-url" in arguments and "--qdrant-path" not in arguments
    assert arguments[arguments.index("--api-key-env") + 1] == "QDRANT_API_KEY"
    assert "secret-key" not in arguments


def test_mpr_serve_help(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["serve", "--help"], capsys, monkeypatch)
    assert code == 0
    for option in ("--host", "--port", "--collection", "--pipeline", "--threads", "--qdrant-url", "--qdrant-path"):
        assert option in out
