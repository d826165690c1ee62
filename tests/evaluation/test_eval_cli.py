"""``mpr eval`` end to end: the table, the saved files, the cache on a second run, refused overwrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that rich wraps no table cell the assertions look for."""
    monkeypatch.setenv("COLUMNS", "200")


def test_eval_on_tiny_beir(tiny_run: Path, graded_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    output = tmp_path / "eval"
    args = ["eval", "--data", str(graded_beir), "--model", str(tiny_run), "--output", str(output)]
    code, out, err = run_cli([*args, "-m", "P_5", "-m", "bpref"], capsys, monkeypatch)
    assert code == 0, err
    for label in ("nDCG@10", "Recall@100", "MRR@10", "MAP@100", "P_5", "bpref", "ndcg_cut_10", "map_cut_100"):
        assert label in out
    assert "10 queries evaluated" in out and "1 of the 11 judged queries have no relevant document" in out
    assert "passage length 128" in out and "corpus embeddings encoded, now cached" in out
    summary = json.loads((output / "metrics.json").read_text())
    assert list(summary["metrics"]["exact"]) == ["nDCG@10", "Recall@100", "MRR@10", "MAP@100", "P_5", "bpref"]
    lines = (output / "run-exact.trec").read_text().splitlines()
    assert len(lines) == 10 * 60 and all(len(line.split()) == 6 for line in lines)  # top-k 100 > 60 documents

    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2 and "already holds results" in err and "--overwrite" in err and "Traceback" not in err

    code, out, err = run_cli([*args, "--overwrite", "--top-k", "10", "-m", "Success@5"], capsys, monkeypatch)
    assert code == 2 and "--top-k 10 is below the deepest cutoff requested (100)" in err

    code, out, err = run_cli(
        [*args, "--overwrite", "--top-k", "10", "--no-default-measures", "-m", "nDCG@10", "-m", "Success@5"],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "corpus embeddings read from the cache" in out  # the second run did not encode the corpus
    summary = json.loads((output / "metrics.json").read_text())
    assert list(summary["metrics"]["exact"]) == ["nDCG@10", "Success@5"] and summary["top_k"] == 10


def test_eval_on_an_nfcorpus_sample_with_a_collection(
    tiny_run: Path, nfcorpus_sample: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    qdrant = tmp_path / "qdrant"
    code, _, err = run_cli(
        [
            "index",
            "--data",
            str(nfcorpus_sample),
            "--model",
            str(tiny_run),
            "--collection",
            "nf",
            "--qdrant-path",
            str(qdrant),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    code, out, err = run_cli(
        [
            "eval",
            "--data",
            str(nfcorpus_sample),
            "--split",
            "train",
            "--collection",
            "nf",
            "--exact",
            "--qdrant-path",
            str(qdrant),
            "--max-queries",
            "8",
            "--output",
            str(tmp_path / "out"),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    assert "Qdrant - exact" in out and "8 queries evaluated (a random sample" in out
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["search_modes"] == ["exact", "qdrant"]
    assert all(abs(value) < 1e-4 for value in summary["difference_qdrant_minus_exact"].values())
    run = (tmp_path / "out" / "run-qdrant.trec").read_text().splitlines()
    assert run[0].split()[2].startswith("MED-") and len({line.split()[0] for line in run}) == 8


def test_eval_help_documents_the_measures(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["eval", "--help"], capsys, monkeypatch)
    assert code == 0
    for text in ("--measure", "ndcg_cut_10", "recip_rank", "--collection", "--exact", "--no-cache", "--top-k"):
        assert text in out
