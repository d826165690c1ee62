"""Inference lengths in ``mpr eval``: the model's own maximum by default (MTEB parity), less when asked, cut texts
counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli
from tests.conftest import SHARED_DATA, write_jsonl

# all-MiniLM-L6-v2's published MTEB nDCG@10 (BEIR test splits), embedded at its max_seq_length, 256 tokens
MTEB_NDCG_AT_10 = {"nfcorpus": 0.3159, "scifact": 0.6451}
MTEB_TOLERANCE = 0.001


@pytest.fixture(scope="module")
def long_queries_beir(graded_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``graded_beir`` whose even queries repeat their words five times (17 tokens, above 8), odd ones as they are
    (5 tokens)."""
    root = tmp_path_factory.mktemp("long-queries")
    shutil.copytree(graded_beir, root, dirs_exist_ok=True)
    queries = [json.loads(line) for line in (graded_beir / "queries.jsonl").read_text().splitlines()]
    for query in queries:
        if int(query["_id"][1:]) % 2 == 0:
            query["text"] = " ".join([query["text"]] * 5)
    write_jsonl(root / "queries.jsonl", queries)
    return root


def _eval(args: list[str], output: Path, capsys, monkeypatch) -> dict:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["eval", *args, "--output", str(output)], capsys, monkeypatch)
    assert code == 0, err
    summary = json.loads((output / "metrics.json").read_text())
    summary["printed"], summary["logged"] = out, err
    return summary


def test_eval_embeds_up_to_the_models_maximum_unless_asked_for_less(
    tiny_run: Path, long_queries_beir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    args = ["--data", str(long_queries_beir), "--model", str(tiny_run)]
    whole = _eval(args, tmp_path / "whole", capsys, monkeypatch)
    assert (whole["query_max_length"], whole["passage_max_length"]) == (128, 128)  # the tiny BERT's maximum
    assert "query length 128 tokens, passage length 128 tokens" in whole["printed"]
    assert "truncated" not in whole["logged"]  # 17-token queries: none cut

    cut = _eval([*args, "--query-max-length", "8"], tmp_path / "cut", capsys, monkeypatch)
    assert (cut["query_max_length"], cut["passage_max_length"]) == (8, 128)
    assert cut["logged"].count("truncated") == 1  # one line for all the queries
    assert "5 of 10 queries longer than 8 tokens were truncated" in cut["logged"]
    assert cut["metrics"]["exact"] != whole["metrics"]["exact"]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(MTEB_NDCG_AT_10))
def test_packaged_model_matches_the_published_mteb_figures(dataset: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """``mpr eval`` of the packaged all-MiniLM-L6-v2 with its defaults (exact search, 256-token queries and
    passages) reproduces MTEB's nDCG@10 to 0.001. At the old query length, 32 tokens, SciFact gave 0.6402."""
    if not (SHARED_DATA / dataset).is_dir():
        pytest.skip(f"{dataset} not found in {SHARED_DATA}; set MPR_DATA_MIRROR to the shared data directory")
    summary = _eval(["--data", dataset, "--split", "test"], tmp_path / "eval", capsys, monkeypatch)
    assert (summary["query_max_length"], summary["passage_max_length"]) == (256, 256)
    ndcg = summary["metrics"]["exact"]["nDCG@10"]
    print(f"{dataset} test nDCG@10 {ndcg:.4f} (MTEB {MTEB_NDCG_AT_10[dataset]})")
    assert ndcg == pytest.approx(MTEB_NDCG_AT_10[dataset], abs=MTEB_TOLERANCE)
