"""The ``mpr`` command line: help, a tiny training run, and bad input reported without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mpretriever.cli.app import main
from mpretriever.model import RunManifest
from tests.conftest import write_jsonl, write_qrels


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mpr", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code or 0, captured.out, captured.err


def _tiny_args(tiny_beir: Path, tiny_model_dir: Path, output: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--data",
        str(tiny_beir),
        "--model",
        str(tiny_model_dir),
        "--output",
        str(output),
        "--max-steps",
        "2",
        "--per-device-train-batch-size",
        "4",
        "--group-size",
        "3",
        "--passage-max-length",
        "32",
        *extra,
    ]


def test_console_script_help() -> None:
    script = Path(sys.executable).parent / "mpr"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "train" in result.stdout and "multiple positive passages" in result.stdout


def test_train_help_lists_the_objectives(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["train", "--help"], capsys, monkeypatch)
    assert code == 0
    for name in ("lsepair", "jointlh", "summarglh", "rand1lh", "infonce", "--min-grade", "--negatives", "--resume"):
        assert name in out


def test_tiny_train(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = run_cli(
        _tiny_args(tiny_beir, tiny_model_dir, tmp_path / "run", "--loss", "jointlh"), capsys, monkeypatch
    )
    assert code == 0, err
    assert "saved" in err and "final training loss" in err
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.loss == "jointlh" and manifest.hyperparameters["global_steps"] == 2


def test_unknown_loss_is_a_usage_error(tiny_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = run_cli(
        ["train", "--data", str(tiny_beir), "--output", str(tmp_path), "--loss", "hinge"], capsys, monkeypatch
    )
    assert code == 2
    assert "'hinge' is not one of" in err and "lsepair" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("malformed-json", "corpus.jsonl:3: invalid JSON"),
        ("missing-split", "split 'dev' not found (available splits: train)"),
        ("unknown-dataset", "is neither a path nor found in"),
        ("output-exists", "already exists and is not empty; pass --resume"),
        ("bad-qrels", "train.tsv:2: score must be an integer grade"),
    ],
)
def test_bad_input_gives_a_clear_message(
    problem: str, expected: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    data = tmp_path / "data"
    write_jsonl(data / "corpus.jsonl", [{"_id": "d1", "text": "cancer"}, {"_id": "d2", "text": "heart"}])
    write_jsonl(data / "queries.jsonl", [{"_id": "q1", "text": "cancer"}])
    (data / "qrels").mkdir()
    (data / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    output = tmp_path / "run"
    split = "train"
    data_arg = str(data)
    if problem == "malformed-json":
        with (data / "corpus.jsonl").open("a") as handle:
            handle.write('{"_id": "d3", "text": "oops"\n')
    elif problem == "missing-split":
        split = "dev"
    elif problem == "unknown-dataset":
        data_arg = "no-such-dataset"
    elif problem == "output-exists":
        output.mkdir()
        (output / "model.safetensors").write_text("keep me")
    elif problem == "bad-qrels":
        (data / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    args = [
        "train",
        "--data",
        data_arg,
        "--split",
        split,
        "--model",
        str(tiny_model_dir),
        "--output",
        str(output),
        "--max-steps",
        "1",
    ]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2
    assert expected in " ".join(err.split())
    assert "Traceback" not in err
    if problem == "output-exists":
        assert (output / "model.safetensors").read_text() == "keep me"


def test_source_human_trains_on_human_positives_an_llm_graded_higher(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Every human positive of ``train`` (grade 1) is graded 2 by an LLM file: ``--source human`` keeps them all."""
    human_rows = [line.split("\t")[:2] for line in (tiny_beir / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    llm = write_qrels(tmp_path / "llm.tsv", [(query_id, doc_id, 2) for query_id, doc_id in human_rows])
    extra = ["--source", "human", "--extra-qrels", f"{llm}=llm", "--label-conflict", "min"]
    code, _, err = run_cli(_tiny_args(tiny_beir, tiny_model_dir, tmp_path / "run", *extra), capsys, monkeypatch)
    assert code == 0, err
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.train_samples == 12
    assert manifest.label_filter == {
        "min_grade": 1,
        "sources": ["human"],
        "conflict": "min",
        "extra_qrels": [f"{llm}=llm"],
        "queries_from": None,
    }


def test_real_model_on_real_data(nfcorpus_sample: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """The default model (packaged all-MiniLM-L6-v2) trains for a few steps on a real NFCorpus sub-corpus."""
    from sentence_transformers import SentenceTransformer

    args = [
        "train",
        "--data",
        str(nfcorpus_sample),
        "--output",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        "--per-device-train-batch-size",
        "4",
        "--group-size",
        "4",
        "--passage-max-length",
        "64",
        "--logging-steps",
        "1",
    ]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.base_model == "sentence-transformers/all-MiniLM-L6-v2" and manifest.dimension == 384
    assert manifest.train_samples == 24 and manifest.final_train_loss > 0
    embedding = SentenceTransformer(str(tmp_path / "run")).encode_query(["vitamin D and cancer"])
    assert embedding.shape == (1, 384)


def test_source_min_grade_sets_the_llms_scale_apart_from_the_humans(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Human positives are grade 1 and need grade 2: only the LLM's grade-1 positives (its own minimum) train."""
    human_rows = [line.split("\t")[:2] for line in (tiny_beir / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    llm_rows = [(query_id, doc_id, 1) for query_id, doc_id in human_rows[:5]]
    llm = write_qrels(tmp_path / "llm.tsv", llm_rows)
    extra = ["--min-grade", "2", "--source-min-grade", "llm=1", "--extra-qrels", f"{llm}=llm"]
    code, _, err = run_cli(_tiny_args(tiny_beir, tiny_model_dir, tmp_path / "run", *extra), capsys, monkeypatch)
    assert code == 0, err
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.train_samples == len({query_id for query_id, _, _ in llm_rows})
    assert manifest.label_filter["source_min_grade"] == {"llm": 1}
    code, _, err = run_cli(
        _tiny_args(tiny_beir, tiny_model_dir, tmp_path / "bad", "--source-min-grade", "llm"), capsys, monkeypatch
    )
    assert code == 2 and "'llm' is not SOURCE=GRADE" in " ".join(err.split())
