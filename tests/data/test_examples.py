"""Training examples keep every positive with grade and source; label filters choose the label regime."""

from __future__ import annotations

import logging

from mpretriever.data import BeirDataset, Judgement, LabelFilter, build_examples, merge_qrels


def _qrels() -> dict:
    return {
        "q1": {
            "a": Judgement("a", 3, "human"),
            "b": Judgement("b", 1, "human"),
            "c": Judgement("c", 2, "llm"),
            "z": Judgement("z", 0, "human"),
        },
        "q2": {"d": Judgement("d", 1, "llm")},
    }


QUERIES = {"q1": "first", "q2": "second"}


def test_all_positives_are_kept_best_grade_first() -> None:
    examples = {e.query_id: e for e in build_examples(QUERIES, _qrels())}
    first = examples["q1"]
    assert [(p.doc_id, p.grade, p.source) for p in first.positives] == [
        ("a", 3, "human"),
        ("c", 2, "llm"),
        ("b", 1, "human"),
    ]
    assert first.excluded == frozenset()
    assert first.query == "first"


def test_min_grade_excludes_weaker_labels_instead_of_making_them_negatives(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        examples = build_examples(QUERIES, _qrels(), LabelFilter(min_grade=2))
    assert [e.query_id for e in examples] == ["q1"]
    assert [p.doc_id for p in examples[0].positives] == ["a", "c"]
    assert examples[0].excluded == frozenset({"b"})
    assert "1 judged queries have no positive" in caplog.text


def test_source_filter_selects_a_label_regime() -> None:
    examples = build_examples(QUERIES, _qrels(), LabelFilter(sources=frozenset({"llm"})))
    assert {e.query_id: [p.doc_id for p in e.positives] for e in examples} == {"q1": ["c"], "q2": ["d"]}
    assert examples[0].excluded == frozenset({"a", "b"})


def test_hard_negatives_that_are_labelled_are_dropped(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        examples = build_examples(QUERIES, _qrels(), hard_negatives={"q1": ["x", "a", "b", "y", "z"]})
    assert examples[0].hard_negatives == ("x", "y")
    assert "dropped 3 hard negatives" in caplog.text


def test_merge_keeps_the_higher_grade_and_its_source() -> None:
    merged = merge_qrels(
        [
            {"q1": {"a": Judgement("a", 1, "human")}},
            {"q1": {"a": Judgement("a", 2, "llm"), "b": Judgement("b", 1, "llm")}},
        ]
    )
    assert merged["q1"]["a"] == Judgement("a", 2, "llm")
    assert merged["q1"]["b"].source == "llm"


def test_graded_regimes_on_the_tiny_dataset(tiny_beir) -> None:
    dataset = BeirDataset(tiny_beir)
    qrels = dataset.qrels("train-graded")
    strong = build_examples(dataset.queries, qrels, LabelFilter(min_grade=3))
    everything = build_examples(dataset.queries, qrels, LabelFilter(min_grade=1))
    assert {len(e.positives) for e in strong} == {1}
    assert {len(e.excluded) for e in strong} == {2}
    assert {len(e.positives) for e in everything} == {3}
