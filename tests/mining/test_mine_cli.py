"""``mpr mine`` end to end: BM25 and Qdrant runs, the summary, refusals, and mpr train reading the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpretriever.cli.app import app
from mpretriever.data import BeirDataset
from mpretriever.data.negatives import load_negatives
from mpretriever.model import RunManifest
from mpretriever.training.run import OutputExistsError, TrainConfig, load_training_examples
from tests.cli.test_cli import _tiny_args, run_cli

runner = CliRunner()


def _mine(*args: str):
    return runner.invoke(app, ["mine", *args], env={"COLUMNS": "200"})


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_help_explains_the_options() -> None:
    result = _mine("--help")
    assert result.exit_code == 0
    for option in ("--skip-top", "--depth", "--max-negatives", "--relative-margin", "--absolute-margin", "--overwrite"):
        assert option in result.output


def test_bm25_mining_writes_a_file_and_a_summary_and_refuses_to_overwrite(tiny_beir: Path, tmp_path: Path) -> None:
    output = tmp_path / "negatives.jsonl"
    args = ["--data", str(tiny_beir), "--method", "bm25", "--output", str(output), "--max-negatives", "4"]
    result = _mine(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "12 queries mined with bm25" in text and "negatives per query: mean" in text
    assert "queries left without negatives: 0" in text
    dataset = BeirDataset(tiny_beir)
    train = dataset.qrels("train")
    records = _records(output)
    assert [r["query_id"] for r in records] == list(train)
    for record in records:
        assert 1 <= len(record["negatives"]) <= 4
        assert not set(record["negatives"]) & set(train[record["query_id"]])
    first = output.read_bytes()

    result = _mine(*args, "--skip-top", "1")
    assert isinstance(result.exception, OutputExistsError) and "--overwrite" in str(result.exception)
    assert output.read_bytes() == first

    result = _mine(*args, "--skip-top", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    shifted = {r["query_id"]: r["negatives"] for r in _records(output)}
    for record in records:  # skipping rank 1 shifts every list by one
        assert shifted[record["query_id"]][:3] == record["negatives"][1:4]


def test_bad_input_exits_2_without_traceback(tiny_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    output = tmp_path / "negatives.jsonl"
    output.write_text("")
    code, _, err = run_cli(["mine", "--data", str(tiny_beir), "--output", str(output)], capsys, monkeypatch)
    assert code == 2 and "already exists" in err and "Traceback" not in err
    code, _, err = run_cli(
        ["mine", "--data", str(tiny_beir), "-o", str(tmp_path / "n.jsonl"), "--skip-top", "9", "--depth", "5"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "must be smaller than depth" in err
    result = _mine(
        "--data",
        str(tiny_beir),
        "-o",
        str(tmp_path / "n.jsonl"),
        "--relative-margin",
        "0.1",
        "--absolute-margin",
        "0.1",
    )
    assert result.exit_code == 2 and "not both" in result.output


def test_dense_mining_from_a_qdrant_collection(tiny_beir: Path, tiny_index: Path, tmp_path: Path) -> None:
    output = tmp_path / "dense.jsonl"
    result = _mine(
        "--data",
        str(tiny_beir),
        "--method",
        "dense",
        "--collection",
        "tiny",
        "--qdrant-path",
        str(tiny_index),
        "--output",
        str(output),
        "--depth",
        "8",
        "--max-negatives",
        "8",
        "--relative-margin",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "mined with dense (Qdrant)" in " ".join(result.output.split())
    dataset = BeirDataset(tiny_beir)
    negatives = load_negatives(output, dataset.queries, dataset.doc_index)
    train = dataset.qrels("train")
    assert negatives and all(not set(docs) & set(train[q]) for q, docs in negatives.items())
    scores = [s for r in _records(output) for s in r["scores"]]
    assert scores and all(-1.0 <= s <= 1.0 for s in scores)  # cosine similarities from the collection


def test_train_accepts_the_mined_file(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    negatives = tmp_path / "negatives.jsonl"
    result = _mine("--data", str(tiny_beir), "--method", "dense", "--model", str(tiny_model_dir), "-o", str(negatives))
    assert result.exit_code == 0, result.output
    mined = {r["query_id"]: r["negatives"] for r in _records(negatives)}

    dataset = BeirDataset(tiny_beir)
    examples = load_training_examples(TrainConfig(data=str(tiny_beir), output=tmp_path, negatives=negatives), dataset)
    assert {e.query_id: list(e.hard_negatives) for e in examples} == mined  # none dropped as a labelled passage

    run = tmp_path / "run"
    code, _, err = run_cli(
        _tiny_args(tiny_beir, tiny_model_dir, run, "--negatives", str(negatives), "--max-steps", "1"),
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    manifest = RunManifest.load(run)
    assert manifest.hyperparameters["negatives"] == str(negatives)
    assert manifest.hyperparameters["global_steps"] == 1


@pytest.mark.parametrize("option", [["--model", "x"], ["--collection", "x"]])
def test_model_options_need_the_dense_method(tiny_beir: Path, tmp_path: Path, option: list[str]) -> None:
    result = _mine("--data", str(tiny_beir), "-o", str(tmp_path / "n.jsonl"), *option)
    assert isinstance(result.exception, ValueError) and "--method dense" in str(result.exception)
