"""``mpr index`` through :func:`mpretriever.index.run.index_dataset`: stale points counted, --sync, another corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

from mpretriever.index import QdrantSettings
from tests.cli.test_cli import run_cli


def test_mpr_index_counts_stale_points_syncs_and_refuses_another_corpus(
    tiny_beir: Path, tiny_run: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    qdrant = str(tmp_path / "qdrant")

    def index(data: Path, *options: str) -> tuple[int, str]:
        arguments = ["index", "--data", str(data), "--model", str(tiny_run), "--collection", "docs"]
        code, _, err = run_cli([*arguments, "--qdrant-path", qdrant, *options], capsys, monkeypatch)
        return code, " ".join(err.split())

    assert index(tiny_beir)[0] == 0
    code, output = index(tiny_beir, "--max-docs", "50")
    assert code == 0 and "10 points are not in this corpus" in output and "--sync deletes them" in output
    code, output = index(tiny_beir, "--max-docs", "50", "--sync")
    assert code == 0 and "50 points in the collection; 10 points whose documents left the corpus deleted" in output

    other = tmp_path / "other"
    shutil.copytree(tiny_beir, other)
    code, output = index(other)
    assert code == 2 and f"holds corpus {tiny_beir.name}, not other" in output and "--allow-other-corpus" in output
    code, output = index(other, "--allow-other-corpus")
    assert code == 0 and "10 written, 50 already present, 60 points" in output  # the same ids: one merged set
    client = QdrantSettings(path=qdrant).connect()
    assert client.count("docs").count == 60
    client.close()
