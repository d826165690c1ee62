"""Hard-negative files in JSONL and TSV form."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mpretriever.data import DataFormatError, load_negatives

QUERIES = {"q1", "q2"}
DOCS = {"d1", "d2", "d3"}


def test_jsonl_keeps_rank_order_and_skips_unknown_ids(tmp_path: Path, caplog) -> None:
    path = tmp_path / "negatives.jsonl"
    path.write_text(
        '{"query_id": "q1", "negatives": ["d3", "d1", "zz"]}\n\n{"query_id": "nope", "negatives": ["d1"]}\n'
    )
    with caplog.at_level(logging.WARNING):
        assert load_negatives(path, QUERIES, DOCS) == {"q1": ["d3", "d1"]}
    assert "skipped 2 unknown query or document id(s) (line 1: zz, line 3: nope)" in caplog.text


def test_tsv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "negatives.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td2\t3.5\nq2\td3\t1.0\nq1\td1\t0.5\n")
    assert load_negatives(path, QUERIES, DOCS) == {"q1": ["d2", "d1"], "q2": ["d3"]}


def test_malformed_lines_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "negatives.jsonl"
    path.write_text('{"query_id": "q1", "negatives": ["d1"]}\n{"query_id": "q2", "negatives": "d1"}\n')
    with pytest.raises(DataFormatError, match=r"negatives.jsonl:2: expected \{\"query_id\""):
        load_negatives(path, QUERIES, DOCS)
    path.write_text('{"query_id": "q1", negatives}\n')
    with pytest.raises(DataFormatError, match=r"negatives.jsonl:1: invalid JSON"):
        load_negatives(path, QUERIES, DOCS)
    with pytest.raises(DataFormatError, match="file not found"):
        load_negatives(tmp_path / "missing.tsv", QUERIES, DOCS)
