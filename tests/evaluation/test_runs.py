"""TREC run files: six columns, ranks from 1 in trec_eval's order, exact round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.data.errors import DataFormatError
from mpretriever.evaluation.runs import cut_run, format_run, read_run, to_pytrec, write_run
from mpretriever.search.ranking import trec_order

RUN = {
    "q2": [("MED-10", 0.25), ("MED-2", 0.8123456835746765), ("MED-3", 0.25)],
    "q1": [("d1", 1.5), ("d2", -0.125)],
}


def test_run_file_has_six_columns_and_ranks_from_one(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.trec", RUN, tag="mpr-exact")
    lines = [line.split(" ") for line in path.read_text().splitlines()]
    assert all(len(columns) == 6 for columns in lines)
    assert [(c[0], c[1], c[2], c[3], c[5]) for c in lines] == [
        ("q1", "Q0", "d1", "1", "mpr-exact"),
        ("q1", "Q0", "d2", "2", "mpr-exact"),
        ("q2", "Q0", "MED-2", "1", "mpr-exact"),
        ("q2", "Q0", "MED-3", "2", "mpr-exact"),  # tied with MED-10: the larger id first, as trec_eval ranks
        ("q2", "Q0", "MED-10", "3", "mpr-exact"),
    ]


def test_round_trip_keeps_every_score_exactly(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.trec", RUN)
    assert read_run(path) == {query_id: trec_order(hits) for query_id, hits in RUN.items()}
    assert to_pytrec(read_run(path)) == to_pytrec(RUN)


def test_trec_order_breaks_ties_by_descending_id_at_float32_precision() -> None:
    hits = [("a", 0.5), ("c", 0.5 + 1e-12), ("b", 0.5), ("d", 0.75)]  # 0.5 + 1e-12 is 0.5 in float32
    assert [hit.doc_id for hit in trec_order(hits)] == ["d", "c", "b", "a"]
    assert cut_run({"q": hits}, 2) == {"q": trec_order(hits)[:2]}


def test_malformed_run_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2 0.4\n")
    with pytest.raises(DataFormatError, match=r"bad.trec:2: expected 6 columns"):
        read_run(path)
    path.write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d1 2 0.4 tag\n")
    with pytest.raises(DataFormatError, match=r":2: document 'd1' appears twice"):
        read_run(path)


def test_ids_with_spaces_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="without spaces"):
        format_run({"q 1": [("d1", 1.0)]})
    with pytest.raises(ValueError, match="retrieved twice"):
        to_pytrec({"q": [("d1", 1.0), ("d1", 0.5)]})
