"""``mpr export --format flagembedding``: a BEIR split out, and back in through the FlagEmbedding reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpretriever.data import BeirDataset
from mpretriever.data.beir import passage_text
from mpretriever.data.export import export_flagembedding
from mpretriever.data.flagembedding import read_flagembedding
from mpretriever.files import OutputExistsError
from tests.cli.test_cli import run_cli
from tests.conftest import write_jsonl


def _texts(dataset: BeirDataset) -> dict[str, str]:
    return {row["_id"]: passage_text(row["title"], row["text"]) for row in dataset.corpus}


def test_a_split_goes_out_and_comes_back_with_the_same_positives(nfcorpus_sample: Path, tmp_path: Path) -> None:
    dataset = BeirDataset(nfcorpus_sample)
    texts = _texts(dataset)
    qrels = dataset.qrels("train")
    some_query = sorted(qrels)[0]
    judged = set(qrels[some_query])
    others = [doc_id for doc_id in sorted(texts) if doc_id not in judged][:4]
    mined = write_jsonl(tmp_path / "mined.jsonl", [{"query_id": some_query, "negatives": [*judged, *others]}])
    output = tmp_path / "nf.jsonl"
    stats = export_flagembedding(dataset, "train", output, negatives=mined)
    assert (stats.queries, stats.negatives, stats.without_positive) == (24, 4, 0)
    back = read_flagembedding(output)
    exported = {
        back.queries[q]: {back.corpus[d]: j.grade for d, j in judged_back.items()}
        for q, judged_back in back.qrels.items()
    }
    for query_id, judgements in qrels.items():
        expected: dict[str, int] = {}
        for doc_id, judgement in judgements.items():  # documents of one text are one passage there
            expected[texts[doc_id]] = max(judgement.grade, expected.get(texts[doc_id], 0))
        assert exported[dataset.queries[query_id]] == expected
    (with_negatives,) = [q for q, negatives in back.negatives.items() if negatives]
    assert [back.corpus[d] for d in back.negatives[with_negatives]] == [texts[d] for d in others]  # judged left out


def test_min_grade_and_overwrite(tiny_beir: Path, tmp_path: Path) -> None:
    dataset = BeirDataset(tiny_beir)
    output = tmp_path / "graded.jsonl"
    stats = export_flagembedding(dataset, "train-graded", output, min_grade=3)
    assert (stats.queries, stats.positives) == (12, 12)  # one grade-3 positive per query
    assert {tuple(json.loads(line)["pos_scores"]) for line in output.read_text().splitlines()} == {(3,)}
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        export_flagembedding(dataset, "train-graded", output)
    assert export_flagembedding(dataset, "train-graded", output, overwrite=True).positives == 36


def test_mpr_export(tiny_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    output = tmp_path / "out.jsonl"
    arguments = ["export", "--data", str(tiny_beir), "--split", "train", "-o", str(output)]
    code, _, err = run_cli(arguments, capsys, monkeypatch)
    assert code == 0 and "12 queries, 36 positives, 0 negatives" in " ".join(err.split()), err
    code, _, err = run_cli(arguments, capsys, monkeypatch)
    assert code != 0 and "already exists" in err
