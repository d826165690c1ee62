"""Answer matching (DPR has_answer) and SQuAD EM / F1 on hand-made cases."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mpretriever.data.errors import DataFormatError
from mpretriever.evaluation.answers import (
    AnswerMatcher,
    answer_tokens,
    exact_match,
    f1_score,
    has_answer,
    read_answers,
    squad_score,
)


def test_tokens_are_nfd_lowercase_word_runs_and_single_symbols() -> None:
    assert answer_tokens("U.S. Army's 1st") == ["u", ".", "s", ".", "army", "'", "s", "1st"]
    # NFD splits "ö" into "o" + a combining mark, which stays inside the word run
    assert answer_tokens("Röntgen") == ["ro\u0308ntgen"]


def test_has_answer_unicode_and_accents() -> None:
    passage = "The first prize went to Wilhelm Conrad Röntgen in 1901."
    assert has_answer(passage, ["wilhelm conrad röntgen"])  # case-insensitive
    assert has_answer(passage, ["Wilhelm Conrad Ro\u0308ntgen"])  # composed and decomposed forms agree (NFD)
    assert not has_answer(passage, ["Wilhelm Conrad Rontgen"])  # the accent is kept, as in DPR


def test_has_answer_needs_a_contiguous_run_of_whole_tokens() -> None:
    assert not has_answer("The team finished fourth in 1999.", ["four"])  # "four" is not a token of "fourth"
    assert has_answer("The team finished fourth in 1999.", ["fourth", "four"])  # any answer suffices
    assert not has_answer("Denver won; the Broncos lost.", ["Denver Broncos"])  # tokens present, not contiguous
    assert has_answer("May 18, 2018 was the date.", ["May 18 , 2018"])  # punctuation is a token of its own
    assert not has_answer("May 18 2018 was the date.", ["May 18, 2018"])


def test_answers_without_a_letter_or_digit_are_skipped() -> None:
    assert not has_answer("Every sentence ends with a dot.", ["."])
    assert not has_answer("Every sentence ends with a dot.", [".", "?!"])
    assert has_answer("Every sentence ends with a dot.", [".", "dot"])
    assert not has_answer("anything", [])


def test_matcher_caches_passages_by_key() -> None:
    matcher = AnswerMatcher()
    assert matcher.has_answer("Paris is in France.", ["paris"], key="d1")
    # the cached tokens of d1 are used, whatever text is passed again under that key
    assert matcher.has_answer("something else", ["france"], key="d1")


def test_exact_match_normalises_articles_punctuation_case_and_spaces() -> None:
    assert exact_match("The Denver Broncos!", ["Denver Broncos"]) == 1.0
    assert exact_match("  denver   broncos ", ["Denver Broncos"]) == 1.0
    assert exact_match("an apple", ["the apple"]) == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert exact_match("Carolina", ["Denver Broncos", "Carolina Panthers", "Carolina"]) == 1.0  # max over answers


def test_f1_partial_overlap() -> None:
    # prediction tokens [denver, broncos, won] ("the" dropped), gold [denver, broncos]: 2 in common,
    # precision 2/3, recall 2/2, F1 = 2 * (2/3) * 1 / (2/3 + 1) = 0.8
    assert f1_score("the Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8, abs=1e-6)
    # "Denver" vs [denver, broncos]: precision 1, recall 1/2, F1 = 2 * 1 * 0.5 / 1.5 = 2/3
    assert f1_score("Denver", ["Denver Broncos"]) == pytest.approx(2 / 3, abs=1e-6)
    # the best gold answer counts: 2/3 against the first, 1.0 against the second
    assert f1_score("Denver", ["Denver Broncos", "denver."]) == pytest.approx(1.0)
    assert f1_score("", ["Denver Broncos"]) == 0.0
    score = squad_score("Broncos", ["Denver Broncos"])
    assert (score.exact_match, round(score.f1, 6)) == (0.0, round(2 / 3, 6))
    with pytest.raises(ValueError, match="no gold answer"):
        squad_score("x", [])


def test_read_answers(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    rows = [
        {"_id": "q1", "text": "a", "metadata": {"answers": ["x", "y"]}},
        {"_id": "q2", "text": "b", "metadata": {"answers": []}},
        {"_id": "q3", "text": "c"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert read_answers(path) == {"q1": ["x", "y"]}
    path.write_text(json.dumps({"_id": "q1", "text": "a", "metadata": {"answers": "x"}}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="list of strings"):
        read_answers(path)


def test_read_answers_reports_a_truncated_gzip_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl.gz"
    row = {"_id": "q1", "text": "a", "metadata": {"answers": ["x"]}}
    path.write_bytes(gzip.compress((json.dumps(row) + "\n").encode())[:-12])
    with pytest.raises(DataFormatError, match=r"queries.jsonl.gz:1: truncated or corrupt gzip file"):
        read_answers(path)
