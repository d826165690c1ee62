"""``--data hf:...``: Hugging Face datasets (a save_to_disk directory, a parquet file) with list or single-text
positive columns, found by their usual names or named; NFCorpus converted on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from mpretriever.data import BeirDataset, resolve_dataset
from mpretriever.data.errors import DataFormatError
from mpretriever.data.flagembedding import passage_id
from mpretriever.data.hf_dataset import HfSource
from tests.conftest import nfcorpus_graded_texts


@pytest.fixture(scope="module")
def nfcorpus_rows() -> dict[str, list]:
    """40 NFCorpus training queries with the texts of their graded positives (a list per row)."""
    corpus, texts, graded = nfcorpus_graded_texts()
    positives = {query_id: [corpus[doc_id] for doc_id in links] for query_id, links in graded.items()}
    chosen = sorted(positives)[:40]
    return {"question": [texts[q] for q in chosen], "relevant": [sorted(set(positives[q])) for q in chosen]}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))


def test_the_argument_names_location_split_and_columns() -> None:
    assert HfSource.parse("hf:org/name") == HfSource("org/name", "train", {})
    parsed = HfSource.parse("hf:./saved@dev#query=question,pos=relevant")
    assert parsed == HfSource("./saved", "dev", {"query": "question", "pos": "relevant"})
    with pytest.raises(ValueError, match="ROLE=COLUMN"):
        HfSource.parse("hf:org/name#answer=x")


def test_a_saved_dataset_with_named_list_columns(nfcorpus_rows: dict[str, list], tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(nfcorpus_rows)}).save_to_disk(str(saved))
    directory = resolve_dataset(f"hf:{saved}#query=question,pos=relevant")
    dataset = BeirDataset(directory)
    qrels = dataset.qrels("train")
    assert len(qrels) == 40 and len(dataset.queries) == 40
    for question, relevant in zip(nfcorpus_rows["question"], nfcorpus_rows["relevant"], strict=True):
        (query_id,) = [q for q, text in dataset.queries.items() if text == question]
        assert set(qrels[query_id]) == {passage_id(text) for text in relevant}
    assert resolve_dataset(f"hf:{saved}#query=question,pos=relevant") == directory  # converted once
    with pytest.raises(DataFormatError, match=r"no split 'dev' \(it has train\)"):
        resolve_dataset(f"hf:{saved}@dev#query=question,pos=relevant")
    with pytest.raises(DataFormatError, match=r"no pos column .*the dataset has question, relevant"):
        resolve_dataset(f"hf:{saved}#query=question")


def test_a_parquet_file_of_anchor_positive_negative_texts(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    rows = {
        "anchor": ["vitamin d cancer", "statins heart"],
        "positive": ["Vitamin D and breast cancer.", "Statins lower cholesterol."],
        "negative": ["Statins lower cholesterol.", "Coffee and sleep."],
    }
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    dataset = BeirDataset(resolve_dataset(f"hf:{path}"))  # the usual column names are found
    qrels = dataset.qrels("train")
    assert sorted(len(judged) for judged in qrels.values()) == [1, 1] and len(dataset.corpus) == 3
    negatives = (Path(dataset.root) / "negatives.jsonl").read_text().splitlines()
    assert len(negatives) == 2


def test_a_bad_row_is_reported_at_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.json"
    path.write_text(json.dumps({"query": "q", "pos": ["a"]}) + "\n" + json.dumps({"query": "", "pos": ["b"]}) + "\n")
    with pytest.raises(DataFormatError, match=r"row:2: 'query' must be a non-empty text"):
        resolve_dataset(f"hf:{path}")


def test_a_hub_id_that_cannot_be_fetched_is_reported() -> None:
    from mpretriever.data import DatasetNotFoundError

    # offline, as every test is (tests/conftest.py): what a user without access to the hub sees
    with pytest.raises(DatasetNotFoundError, match="cannot load the Hugging Face dataset hf:no-such-org/no-such-set"):
        resolve_dataset("hf:no-such-org/no-such-set")
