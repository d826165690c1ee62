"""Choosing negatives: labelled documents never returned, rank window, margins, count; which queries are mined."""

from __future__ import annotations

import pytest

from mpretriever.data.beir import Judgement
from mpretriever.mining.base import Candidate
from mpretriever.mining.selection import SelectionConfig, margin_threshold, mining_queries, select_negatives


def ranked(*pairs: tuple[str, float]) -> list[Candidate]:
    return [Candidate(doc_id, score) for doc_id, score in pairs]


RANKING = ranked(("p1", 0.95), ("a", 0.9), ("b", 0.8), ("p2", 0.75), ("c", 0.7), ("d", 0.5), ("e", 0.3), ("f", 0.1))
POSITIVES = {"p1", "p2"}


def ids(selection) -> list[str]:
    return [c.doc_id for c in selection.negatives]


def test_labelled_documents_are_never_returned_and_ranks_count_without_them() -> None:
    selection = select_negatives(RANKING, POSITIVES, [0.95, 0.75], SelectionConfig(depth=50, max_negatives=50))
    assert ids(selection) == ["a", "b", "c", "d", "e", "f"]
    # skipping 2 skips the two best *unlabelled* documents, not p1 and a
    selection = select_negatives(RANKING, POSITIVES, [0.95, 0.75], SelectionConfig(skip_top=2, depth=50))
    assert ids(selection)[0] == "c"


def test_rank_window_and_max_negatives() -> None:
    selection = select_negatives(RANKING, POSITIVES, [], SelectionConfig(skip_top=1, depth=4, max_negatives=10))
    assert ids(selection) == ["b", "c", "d"]  # unlabelled ranks 2..4
    assert selection.in_window == 3 and selection.dropped_by_margin == 0 and selection.threshold is None
    selection = select_negatives(RANKING, POSITIVES, [], SelectionConfig(skip_top=1, depth=6, max_negatives=2))
    assert ids(selection) == ["b", "c"]


def test_duplicates_from_a_miner_are_returned_once() -> None:
    selection = select_negatives(ranked(("a", 0.9), ("a", 0.9), ("b", 0.5)), set(), [], SelectionConfig())
    assert ids(selection) == ["a", "b"]


def test_relative_margin_follows_sentence_transformers() -> None:
    # p = min positive = 0.75; threshold = 0.75 - 0.75 * 0.1 = 0.675
    config = SelectionConfig(relative_margin=0.1, max_negatives=50)
    selection = select_negatives(RANKING, POSITIVES, [0.95, 0.75], config)
    assert selection.threshold == pytest.approx(0.675)
    assert ids(selection) == ["d", "e", "f"]
    assert selection.dropped_by_margin == 3  # a, b, c
    # a negative reference score moves the threshold down, never up (|p|, as in sentence-transformers)
    assert margin_threshold([-2.0], SelectionConfig(relative_margin=0.5)) == pytest.approx(-3.0)


def test_absolute_margin_and_mean_reference() -> None:
    # mean of 0.95 and 0.75 = 0.85; threshold 0.85 - 0.1 = 0.75
    config = SelectionConfig(absolute_margin=0.1, margin_reference="mean", max_negatives=50)
    selection = select_negatives(RANKING, POSITIVES, [0.95, 0.75], config)
    assert selection.threshold == pytest.approx(0.75)
    assert ids(selection) == ["c", "d", "e", "f"]
    # margin 0: nothing scoring above the weakest positive
    zero = select_negatives(RANKING, POSITIVES, [0.95, 0.75], SelectionConfig(absolute_margin=0.0, max_negatives=50))
    assert ids(zero) == ["c", "d", "e", "f"] and all(c.score <= 0.75 for c in zero.negatives)


def test_margin_applies_inside_the_window_then_the_count() -> None:
    config = SelectionConfig(skip_top=1, depth=5, max_negatives=2, relative_margin=0.0)
    selection = select_negatives(RANKING, POSITIVES, [0.8], config)
    # window: b, c, d, e (ranks 2..5); b (0.8) is not above 0.8, so kept; the count then keeps b, c
    assert ids(selection) == ["b", "c"]
    selection = select_negatives(RANKING, POSITIVES, [0.6], config)
    assert ids(selection) == ["d", "e"] and selection.dropped_by_margin == 2


def test_no_positive_score_means_no_margin() -> None:
    selection = select_negatives(RANKING, POSITIVES, [], SelectionConfig(relative_margin=0.05, max_negatives=3))
    assert ids(selection) == ["a", "b", "c"] and selection.threshold is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"skip_top": 5, "depth": 5}, "must be smaller than depth"),
        ({"depth": 0}, "depth must be at least 1"),
        ({"max_negatives": 0}, "max_negatives"),
        ({"skip_top": -1}, "skip_top"),
        ({"relative_margin": 0.1, "absolute_margin": 0.1}, "not both"),
        ({"relative_margin": -0.1}, "relative_margin must be 0 or more"),
        ({"margin_reference": "max"}, "margin_reference"),
    ],
)
def test_invalid_settings_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelectionConfig(**options)


def test_mining_queries_exclude_every_label_of_the_split_and_relevant_ones_elsewhere() -> None:
    queries = {"q1": "vitamin d", "q2": "statins", "q3": "no positive", "q4": "unknown to the qrels"}
    qrels = {
        "q1": {"a": Judgement("a", 1), "b": Judgement("b", 2), "z": Judgement("z", 0)},
        "q2": {"c": Judgement("c", 1)},
        "q3": {"y": Judgement("y", 0)},
    }
    other = {"q1": {"o": Judgement("o", 1), "n": Judgement("n", 0)}, "q2": {"m": Judgement("m", 3)}}
    mined = mining_queries(queries, qrels, [other])
    assert [q.query_id for q in mined] == ["q1", "q2"]  # q3 has no positive, q4 no judgement
    first = mined[0]
    assert first.text == "vitamin d"
    assert first.positives == ("b", "a")  # best grade first
    assert first.excluded == {"a", "b", "z", "o"}  # judged in the split, or relevant in another split
    assert mined[1].excluded == {"c", "m"}
