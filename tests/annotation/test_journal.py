from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.annotation.journal import Journal, JudgementRecord
from mpretriever.data.errors import DataFormatError


def record(query: str, doc: str, grade: int = 2, judge: str = "j1") -> JudgementRecord:
    return JudgementRecord(query_id=query, doc_id=doc, judge=judge, prompt="p1", grade=grade, score=1.5)


def test_appended_records_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        assert journal.append([record("q1", "d1"), record("q1", "d2", 0)]) == 2
        assert journal.append([record("q1", "d1", 3)]) == 0  # a pair is never judged twice
    again = Journal(path)
    assert len(again) == 2
    assert again.of("j1", "p1")[("q1", "d1")].grade == 2
    assert again.of("j2", "p1") == {}


def test_a_torn_last_line_is_set_aside_and_rewritten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append([record("q1", "d1")])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"query_id": "q1", "doc_id": "d2", "ju')  # what kill -9 during a write can leave
    journal = Journal(path)
    assert "unfinished last record" in caplog.text
    assert list(journal.of("j1", "p1")) == [("q1", "d1")]
    with journal:
        journal.append([record("q1", "d2")])
    assert sorted(Journal(path).of("j1", "p1")) == [("q1", "d1"), ("q1", "d2")]
    assert all(line.startswith("{") and line.endswith("}") for line in path.read_text().splitlines())


def test_a_bad_line_inside_the_journal_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(record("q1", "d1").to_json() + "\nnot json\n" + record("q2", "d1").to_json() + "\n")
    with pytest.raises(DataFormatError, match=r"journal.jsonl:2: not a JSON record"):
        Journal(path)
    path.write_text('{"query_id": "q1", "doc_id": "d1"}\n')
    with pytest.raises(DataFormatError, match=r":1: journal record misses judge, prompt, grade"):
        Journal(path)


def test_appending_needs_an_open_journal(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="open the journal"):
        Journal(tmp_path / "journal.jsonl").append([record("q1", "d1")])
