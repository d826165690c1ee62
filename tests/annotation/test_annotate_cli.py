from __future__ import annotations

import json
from pathlib import Path

from mpretriever.data.beir import BeirDataset, load_qrels
from tests.cli.test_cli import _tiny_args, run_cli


def test_annotate_help_explains_the_options(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["annotate", "--help"], capsys, monkeypatch)
    assert code == 0
    for option in ("--candidates", "--depth", "--include-judged", "--judge", "--prompt", "--report-only", "--source"):
        assert option in out


def test_annotate_then_train_on_the_llm_labels_alone(
    tiny_beir: Path, tiny_causal_lm: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    labels = tmp_path / "llm.tsv"
    args = ["annotate", "--data", str(tiny_beir), "--depth", "3", "--judge", str(tiny_causal_lm), "-o", str(labels)]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert "36 pairs of 12 queries: 36 judged now" in err and f"wrote {labels}" in err
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2 and "already exists; pass --overwrite" in err

    dataset = BeirDataset(tiny_beir)
    llm = load_qrels(labels, dataset.queries, dataset.doc_index)
    with_positive = sum(1 for docs in llm.values() if any(j.grade >= 1 for j in docs.values()))
    output = tmp_path / "run"
    train = _tiny_args(tiny_beir, tiny_model_dir, output, "--extra-qrels", f"{labels}=llm", "--source", "llm")
    code, _, err = run_cli(train, capsys, monkeypatch)
    assert code == 0, err
    manifest = json.loads((output / "mpretriever.json").read_text())
    assert manifest["label_filter"]["sources"] == ["llm"]
    assert manifest["label_filter"]["extra_qrels"] == [f"{labels}=llm"]
    assert manifest["train_samples"] == with_positive


def test_training_on_the_annotated_queries_alone(
    tiny_beir: Path, tiny_causal_lm: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    labels = tmp_path / "llm.tsv"
    args = ["annotate", "--data", str(tiny_beir), "--max-queries", "5", "--depth", "2"]
    code, _, err = run_cli([*args, "--judge", str(tiny_causal_lm), "-o", str(labels)], capsys, monkeypatch)
    assert code == 0, err
    output = tmp_path / "human-on-sample"
    train = _tiny_args(tiny_beir, tiny_model_dir, output, "--queries-from", str(labels))
    code, _, err = run_cli(train, capsys, monkeypatch)
    assert code == 0, err
    manifest = json.loads((output / "mpretriever.json").read_text())
    assert manifest["train_samples"] == 5  # the sample's queries, with their human positives
    assert manifest["label_filter"]["queries_from"] == str(labels)
