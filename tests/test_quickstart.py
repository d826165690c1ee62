"""mpr quickstart end to end on the tiny model and dataset: a fine-tuned model, two collections, two evaluations
and the comparison table."""

from __future__ import annotations

import json
from pathlib import Path

from mpretriever.index import QdrantSettings
from mpretriever.quickstart import QuickstartConfig, comparison_table, run_quickstart
from tests.cli.test_cli import run_cli


def test_quickstart_trains_indexes_evaluates_and_compares(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = QuickstartConfig(
        data=str(tiny_beir), output=tmp_path / "qs", model=str(tiny_model_dir), steps=2, batch_size=4, progress=False
    )
    outcome = run_quickstart(config)
    assert (outcome.model_dir / "mpretriever.json").is_file()
    manifest = json.loads((outcome.model_dir / "mpretriever.json").read_text())
    assert manifest["split"] == "train-graded" and manifest["label_filter"]["min_grade"] == 3
    client = QdrantSettings(path=str(tmp_path / "qs" / "qdrant")).connect()
    try:
        counts = {name: client.count(f"{outcome.base.dataset}-{name}").count for name in ("base", "tuned")}
    finally:
        client.close()
    assert counts["base"] == counts["tuned"] == outcome.base.corpus_documents > 0
    for report in (outcome.base, outcome.tuned):
        assert set(report.result("qdrant").means) == {"nDCG@10", "Recall@100", "MRR@10", "MAP@100"}
        assert (report.output / "metrics.json").is_file()
    assert outcome.base.fingerprint != outcome.tuned.fingerprint  # the tuned collection holds the tuned model
    base_scores = [hit.score for hit in outcome.base.result("qdrant").run["q0"]]
    assert base_scores != [hit.score for hit in outcome.tuned.result("qdrant").run["q0"]]
    table = comparison_table(outcome, "t")
    assert table.row_count == 4 and len(table.columns) == 5


def test_quickstart_cli_refuses_to_overwrite(tiny_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "keep.txt").write_text("earlier results")
    arguments = ["quickstart", "--data", str(tiny_beir), "--output", str(tmp_path / "qs")]
    code, _, err = run_cli(arguments, capsys, monkeypatch)
    assert code == 2 and "already exists" in err
    assert (tmp_path / "qs" / "keep.txt").read_text() == "earlier results"
