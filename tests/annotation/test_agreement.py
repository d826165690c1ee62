from __future__ import annotations

import pytest

from mpretriever.annotation.agreement import agreement
from mpretriever.data.beir import Judgement


def qrels(rows: dict[str, dict[str, int]]) -> dict[str, dict[str, Judgement]]:
    return {q: {d: Judgement(d, g) for d, g in docs.items()} for q, docs in rows.items()}


def test_agreement_figures_by_hand() -> None:
    human = qrels({"q1": {"a": 2, "b": 0, "c": 1}, "q2": {"d": 0}})
    llm = {("q1", "a"): 3, ("q1", "b"): 0, ("q1", "c"): 0, ("q2", "d"): 2, ("q1", "x"): 2, ("q2", "y"): 1}
    report = agreement(human, llm)
    assert report.pairs == 4
    # LLM >= 2 on a, d; human relevant (>= 1) are a, c: one of two is right, one of two is found
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(0.5)
    assert (report.new_positives, report.queries, report.new_positives_per_query) == (1, 2, 0.5)
    assert report.grades == [0, 1, 2, 3]
    assert report.confusion == [[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    # Cohen's kappa: observed agreement 1/4 (b); by chance sum_k p_human(k) p_llm(k) = (2/4)(2/4) + (1/4)(1/4)
    # (grades 0 and 2) = 5/16; kappa = (1/4 - 5/16) / (1 - 5/16) = -1/11
    assert report.kappa == pytest.approx(-1 / 11)


def test_perfect_agreement_is_kappa_one() -> None:
    human = qrels({"q1": {"a": 0, "b": 1, "c": 2, "d": 3}})
    report = agreement(human, {("q1", d): g for d, g in zip("abcd", range(4), strict=True)})
    assert report.kappa == pytest.approx(1.0)
    assert report.weighted_kappa == pytest.approx(1.0)
    assert report.confusion == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def test_no_pair_in_common_gives_no_kappa() -> None:
    report = agreement(qrels({"q1": {"a": 1}}), {("q1", "b"): 3})
    assert (report.pairs, report.kappa, report.precision, report.recall) == (0, None, None, None)
    assert report.new_positives == 1
    assert any("kappa n/a" in line for line in report.lines())
