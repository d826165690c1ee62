"""The negatives file: JSON lines read back by mpr train's reader, written atomically, never clobbered."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mpretriever.data.negatives import load_negatives
from mpretriever.mining.base import Candidate
from mpretriever.mining.output import MinedQuery, write_negatives
from mpretriever.training.run import OutputExistsError

MINED = [
    MinedQuery("q1", (Candidate("d3", 12.5), Candidate("d1", 7.25), Candidate("d2", 0.1234567891))),
    MinedQuery("q2", ()),
    MinedQuery("q3", (Candidate("d2", -0.5),)),
]


@pytest.mark.parametrize("name", ["negatives.jsonl", "negatives.jsonl.gz"])
def test_round_trip_through_the_training_reader(tmp_path: Path, name: str) -> None:
    path = tmp_path / "out" / name
    assert write_negatives(path, MINED) == 3
    loaded = load_negatives(path, {"q1", "q2", "q3"}, {"d1", "d2", "d3"})
    assert loaded == {"q1": ["d3", "d1", "d2"], "q3": ["d2"]}  # rank order kept; q2 has none
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert records[0] == {"query_id": "q1", "negatives": ["d3", "d1", "d2"], "scores": [12.5, 7.25, 0.123457]}
    assert records[1] == {"query_id": "q2", "negatives": [], "scores": []}


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "negatives.jsonl"
    path.write_text("keep me\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_negatives(path, MINED)
    assert path.read_text() == "keep me\n"
    write_negatives(path, MINED[:1], overwrite=True)
    assert json.loads(path.read_text())["query_id"] == "q1"
    assert [p.name for p in tmp_path.iterdir()] == ["negatives.jsonl"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "negatives.jsonl"
    path.write_text("old\n")

    def failing():
        yield MINED[0]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_negatives(path, failing(), overwrite=True)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["negatives.jsonl"]


def test_a_name_the_reader_would_take_for_tsv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\*\.jsonl"):
        write_negatives(tmp_path / "negatives.txt", MINED)
    assert not (tmp_path / "negatives.txt").exists()
