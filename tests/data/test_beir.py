"""BEIR loading: real data from ../shared/data, and every kind of bad input reported with file and line."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path

import pytest

from mpretriever.data import BeirDataset, DataFormatError, load_qrels, passage_text
from tests.conftest import SHARED_DATA, write_jsonl, write_qrels


def _dataset(root: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]]) -> Path:
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "train.tsv", qrels)
    return root


CORPUS = [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": "d2", "title": "", "text": "two"}]
QUERIES = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}]


def test_loads_real_nfcorpus_with_gzip_corpus() -> None:
    root = SHARED_DATA / "nfcorpus"
    if not root.is_dir():
        pytest.skip("shared data not available")
    dataset = BeirDataset(root)
    assert len(dataset.corpus) == 3633
    assert len(dataset.queries) == 3237
    qrels = dataset.qrels("train-graded")
    assert len(qrels) == 2590
    grades = {j.grade for judgements in qrels.values() for j in judgements.values()}
    assert grades == {1, 2, 3}
    assert sum(len(j) for j in dataset.qrels("train").values()) == 110_575
    assert set(dataset.available_splits()) >= {"train", "train-graded", "dev", "test"}


def test_gzip_qrels_and_integer_ids(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl.gz", [{"_id": 1, "text": "one"}, {"_id": 2, "text": "two"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": 7, "text": "q"}])
    (tmp_path / "qrels").mkdir()
    with gzip.open(tmp_path / "qrels" / "test.tsv.gz", "wt") as handle:
        handle.write("query-id\tcorpus-id\tscore\n7\t2\t1\n")
    dataset = BeirDataset(tmp_path)
    assert dataset.corpus["_id"] == ["1", "2"]
    assert dataset.qrels("test")["7"]["2"].grade == 1


def test_passage_text_joins_title_and_text() -> None:
    assert passage_text("Title", "Body") == "Title Body"
    assert passage_text("", "Body") == "Body"
    assert passage_text("Title", " ") == "Title"


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [("q1", "d1", 1)])
    lines = (root / "corpus.jsonl").read_text().splitlines()
    lines.insert(1, '{"_id": "bad", "text": "missing brace"')
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as caught:
        _ = BeirDataset(root).corpus
    assert caught.value.line == 2
    assert str(caught.value).startswith(f"{root / 'corpus.jsonl'}:2: invalid JSON")


def test_missing_required_field_names_the_file(tmp_path: Path) -> None:
    root = _dataset(tmp_path, [{"id": "d1", "text": "x"}], QUERIES, [("q1", "d1", 1)])
    with pytest.raises(DataFormatError, match=r"corpus.jsonl: records lack the required field\(s\) \['_id'\]"):
        _ = BeirDataset(root).corpus


def test_empty_texts_are_skipped_with_a_counted_warning(tmp_path: Path, caplog) -> None:
    corpus = [*CORPUS, {"_id": "d3", "title": "", "text": "  "}, {"_id": "d4", "title": None, "text": ""}]
    queries = [*QUERIES, {"_id": "q3", "text": ""}]
    root = _dataset(tmp_path, corpus, queries, [("q1", "d1", 1)])
    dataset = BeirDataset(root)
    with caplog.at_level(logging.WARNING):
        assert dataset.corpus["_id"] == ["d1", "d2"]
        assert set(dataset.queries) == {"q1", "q2"}
    assert "skipped 2 documents with empty text (ids: d3, d4)" in caplog.text
    assert "skipped 1 queries with empty text (ids: q3)" in caplog.text


def test_qrels_with_unknown_queries_and_documents_warn_with_lines(tmp_path: Path, caplog) -> None:
    rows = [("q1", "d1", 1), ("nope", "d1", 1), ("q2", "d9", 2), ("q2", "d2", 2)]
    root = _dataset(tmp_path, CORPUS, QUERIES, rows)
    with caplog.at_level(logging.WARNING):
        qrels = BeirDataset(root).qrels("train")
    assert qrels == {"q1": {"d1": qrels["q1"]["d1"]}, "q2": {"d2": qrels["q2"]["d2"]}}
    assert "skipped 1 row(s) naming unknown queries (line 3: nope)" in caplog.text
    assert "skipped 1 row(s) naming unknown documents (line 4: d9)" in caplog.text


def test_bad_qrels_rows_are_errors_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1 d2 1\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:3: expected 3 or 4 tab-separated columns"):
        load_qrels(path, {"q1"}, {"d1", "d2"})
    path.write_text("q1\td1\t1\nq1\td2\thigh\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: score must be an integer grade, got 'high'"):
        load_qrels(path, {"q1"}, {"d1", "d2"})
    path.write_text("q1\td1\t1.5\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:1: score must be an integer"):
        load_qrels(path, {"q1"}, {"d1"})


def test_a_pair_judged_twice_in_one_file_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "twice.tsv"
    path.write_text("query-id\tcorpus-id\tscore\tsource\nq1\td1\t1\thuman\nq1\td2\t1\nq1\td1\t3\tllm\n")
    with pytest.raises(DataFormatError) as caught:
        load_qrels(path, {"q1"}, {"d1", "d2"})
    assert str(caught.value).startswith(f"{path}:4: query 'q1' and document 'd1' are judged again (first at line 2)")


def test_qrels_source_column(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tsv"
    path.write_text("query-id\tcorpus-id\tscore\tsource\nq1\td1\t2\tllm\nq1\td2\t1\n")
    qrels = load_qrels(path, {"q1"}, {"d1", "d2"})
    assert (qrels["q1"]["d1"].source, qrels["q1"]["d2"].source) == ("llm", "human")


def test_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [("q1", "d1", 1)])
    with pytest.raises(DataFormatError, match=r"qrels/dev.tsv: split 'dev' not found \(available splits: train\)"):
        BeirDataset(root).qrels("dev")


def test_not_a_dataset_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not a BEIR dataset"):
        BeirDataset(tmp_path)


def _truncated_gzip(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode())[:-12])


@pytest.mark.parametrize("name", ["corpus", "queries"])
def test_duplicate_ids_are_refused_with_both_lines(name: str, tmp_path: Path) -> None:
    corpus = [*CORPUS, {"_id": "d1", "title": "again", "text": "later copy"}]
    queries = [*QUERIES, {"_id": "q1", "text": "again"}]
    root = _dataset(tmp_path, corpus if name == "corpus" else CORPUS, queries if name == "queries" else QUERIES, [])
    with pytest.raises(DataFormatError) as caught:
        _ = getattr(BeirDataset(root), name)
    path = root / f"{name}.jsonl"
    duplicate = "d1" if name == "corpus" else "q1"
    assert str(caught.value) == f"{path}:3: duplicate _id '{duplicate}' (first at line 1): ids must be unique"


@pytest.mark.parametrize("record", [{"text": "no id"}, {"_id": None, "text": "null id"}, {"_id": " ", "text": "x"}])
def test_record_without_id_names_its_line(record: dict, tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [])
    path = root / "corpus.jsonl"
    path.write_text(path.read_text() + "\n" + json.dumps(record) + "\n")  # a blank line 3 holds no record
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}:4: record without an '_id'"):
        _ = BeirDataset(root).corpus


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv"])
def test_bytes_that_are_not_utf8_name_file_and_line(name: str, tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [("q1", "d1", 1), ("q2", "d2", 1)])
    path = root / name
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"}', b'\xff"}') if name.endswith(".jsonl") else lines[1].replace(b"q", b"\xff")
    path.write_bytes(b"\n".join(lines))
    dataset = BeirDataset(root)
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}:2: not valid UTF-8 \(byte 0xff"):
        dataset.qrels("train")


@pytest.mark.parametrize("name", ["corpus.jsonl.gz", "queries.jsonl.gz", "qrels/train.tsv.gz"])
def test_truncated_gzip_names_the_file(name: str, tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [("q1", "d1", 1)])
    plain = root / name.removesuffix(".gz")
    _truncated_gzip(root / name, plain.read_text())
    plain.unlink()
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(root / name))}:\d+: truncated or corrupt gzip"):
        BeirDataset(root).qrels("train")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "no records: the file is empty"),
        ("\n  \n", "no records: the file is empty"),
        ('{"_id": "d1", "text": ""}\n{"_id": "d2", "title": " ", "text": " "}\n', "no document has a title or text"),
    ],
)
def test_a_corpus_without_documents_says_why(content: str, reason: str, tmp_path: Path) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [])
    (root / "corpus.jsonl").write_text(content)
    with pytest.raises(DataFormatError) as caught:
        _ = BeirDataset(root).corpus
    assert str(caught.value) == f"{root / 'corpus.jsonl'}: {reason}"


def test_the_corpus_is_read_without_a_queries_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    dataset = BeirDataset(tmp_path)
    assert dataset.corpus["_id"] == ["d1", "d2"]
    with pytest.raises(DataFormatError, match=r"queries.jsonl: file not found \(nor queries.jsonl.gz\)"):
        _ = dataset.queries


def test_malformed_json_is_reported_once_without_the_datasets_log(tmp_path: Path, caplog, capfd) -> None:
    root = _dataset(tmp_path, CORPUS, QUERIES, [])
    with (root / "corpus.jsonl").open("a") as handle:
        handle.write('{"_id": "d3", "text": "oops"\n')
    with caplog.at_level(logging.INFO), pytest.raises(DataFormatError, match=r"corpus.jsonl:3: invalid JSON"):
        _ = BeirDataset(root).corpus
    assert "Failed to load JSON" not in caplog.text + capfd.readouterr().err
