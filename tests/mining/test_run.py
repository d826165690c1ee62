"""mine(): a dataset split in, a negatives file out; what it must exclude and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.data import BeirDataset
from mpretriever.data.negatives import load_negatives
from mpretriever.mining import MineConfig, SelectionConfig, mine
from mpretriever.training.run import OutputExistsError
from tests.conftest import write_jsonl, write_qrels


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """One query whose best lexical matches are labelled in several ways, plus unlabelled related documents."""
    root = tmp_path / "labelled"
    documents = [
        {"_id": "pos", "title": "", "text": "vitamin d lowers cancer risk"},
        {"_id": "judged", "title": "", "text": "vitamin cancer risk vitamin cancer risk"},  # grade 0 in train
        {"_id": "test-pos", "title": "", "text": "vitamin cancer risk study"},  # relevant in the test split
        {"_id": "llm-pos", "title": "", "text": "vitamin and cancer risk trial"},  # relevant in an extra qrels
        *({"_id": f"rel{i}", "title": "", "text": f"vitamin intake study {i}"} for i in range(4)),
        *({"_id": f"off{i}", "title": "", "text": f"sleep and coffee {i}"} for i in range(4)),
    ]
    write_jsonl(root / "corpus.jsonl", documents)
    write_jsonl(root / "queries.jsonl", [{"_id": "q", "text": "vitamin cancer risk"}, {"_id": "t", "text": "x"}])
    write_qrels(root / "qrels" / "train.tsv", [("q", "pos", 1), ("q", "judged", 0)])
    write_qrels(root / "qrels" / "test.tsv", [("q", "test-pos", 2), ("t", "off0", 1)])
    write_qrels(root / "llm.tsv", [("q", "llm-pos", 1)])
    return root


def _negatives(path: Path, root: Path) -> list[str]:
    dataset = BeirDataset(root)
    return load_negatives(path, dataset.queries, dataset.doc_index).get("q", [])


def test_labels_of_the_split_other_splits_and_extra_qrels_are_never_negatives(labelled: Path, tmp_path: Path) -> None:
    output = tmp_path / "negatives.jsonl"
    config = MineConfig(data=str(labelled), output=output, extra_qrels=[str(labelled / "llm.tsv")], progress=False)
    outcome = mine(config)
    negatives = _negatives(output, labelled)
    assert negatives and not {"pos", "judged", "test-pos", "llm-pos"} & set(negatives)
    assert set(negatives) <= {f"rel{i}" for i in range(4)}  # the off-topic documents share no word
    assert outcome.excluded_splits == ["test"]
    assert (outcome.stats.queries, outcome.stats.with_negatives, outcome.stats.negatives) == (1, 1, 4)

    config = MineConfig(data=str(labelled), output=output, other_splits=False, overwrite=True, progress=False)
    outcome = mine(config)
    negatives = _negatives(output, labelled)
    assert negatives[:2] == ["test-pos", "llm-pos"]  # now unlabelled, and the best matches
    assert "judged" not in negatives and "pos" not in negatives
    assert outcome.excluded_splits == []


def test_window_and_count_reach_the_file(labelled: Path, tmp_path: Path) -> None:
    output = tmp_path / "negatives.jsonl.gz"
    selection = SelectionConfig(skip_top=1, depth=3, max_negatives=1)
    mine(MineConfig(data=str(labelled), output=output, other_splits=False, selection=selection, progress=False))
    assert _negatives(output, labelled) == ["llm-pos"]  # rank 1 (test-pos) skipped, one kept


def test_an_existing_output_is_refused_before_any_work(tmp_path: Path) -> None:
    output = tmp_path / "negatives.jsonl"
    output.write_text("")
    with pytest.raises(OutputExistsError):
        mine(MineConfig(data=str(tmp_path / "no-such-dataset"), output=output, progress=False))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "splade"}, "method must be one of"),
        ({"method": "bm25", "model": "some-model"}, "for --method dense"),
        ({"max_queries": 0}, "max_queries"),
    ],
)
def test_inconsistent_options_are_refused(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MineConfig(data="nfcorpus", output=tmp_path / "n.jsonl", **options)


def test_a_split_without_positives_is_an_error(labelled: Path, tmp_path: Path) -> None:
    write_qrels(labelled / "qrels" / "dev.tsv", [("q", "off1", 0)])
    with pytest.raises(ValueError, match="no query of split 'dev' has a positive"):
        mine(MineConfig(data=str(labelled), output=tmp_path / "n.jsonl", split="dev", progress=False))
