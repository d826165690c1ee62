"""Training examples keep every positive with grade and source; label filters choose judgements, not passages."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from mpretriever.data import BeirDataset, Judgement, LabelConflict, LabelFilter, build_examples, load_qrels, merge_qrels
from mpretriever.data.examples import strongest_judgements
from tests.conftest import write_qrels


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
    examples = {e.query_id: e for e in build_examples(QUERIES, merge_qrels([_qrels()]))}
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
        examples = build_examples(QUERIES, merge_qrels([_qrels()]), LabelFilter(min_grade=2))
    assert [e.query_id for e in examples] == ["q1"]
    assert [p.doc_id for p in examples[0].positives] == ["a", "c"]
    assert examples[0].excluded == frozenset({"b"})
    assert "1 judged queries have no positive under grade >= 2, sources: any, conflicts: max" in caplog.text


def test_source_filter_selects_a_label_regime() -> None:
    examples = build_examples(QUERIES, merge_qrels([_qrels()]), LabelFilter(sources=frozenset({"llm"})))
    assert {e.query_id: [p.doc_id for p in e.positives] for e in examples} == {"q1": ["c"], "q2": ["d"]}
    assert examples[0].excluded == frozenset({"a", "b"})


def test_hard_negatives_that_are_labelled_are_dropped(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        examples = build_examples(QUERIES, merge_qrels([_qrels()]), hard_negatives={"q1": ["x", "a", "b", "y", "z"]})
    assert examples[0].hard_negatives == ("x", "y")
    assert "dropped 3 hard negatives" in caplog.text


def test_merge_keeps_every_files_judgement_of_a_pair() -> None:
    human = {"q1": {"a": Judgement("a", 1, "human")}}
    llm = {"q1": {"a": Judgement("a", 2, "llm"), "b": Judgement("b", 1, "llm")}}
    merged = merge_qrels([human, llm, human])  # a file read twice adds nothing
    assert merged["q1"]["a"] == (Judgement("a", 1, "human"), Judgement("a", 2, "llm"))
    assert merged["q1"]["b"] == (Judgement("b", 1, "llm"),)
    assert strongest_judgements(merged) == {"q1": {"a": Judgement("a", 2, "llm"), "b": Judgement("b", 1, "llm")}}


def test_a_human_positive_stays_a_positive_of_source_human_when_an_llm_grades_it_higher() -> None:
    merged = merge_qrels([{"q1": {"a": Judgement("a", 1, "human")}}, {"q1": {"a": Judgement("a", 2, "llm")}}])
    for conflict in LabelConflict:
        (example,) = build_examples(QUERIES, merged, LabelFilter(sources=frozenset({"human"}), conflict=conflict))
        (positive,) = example.positives
        assert (positive.doc_id, positive.grade, positive.source) == ("a", 1, "human")
        assert positive.judgements == (Judgement("a", 1, "human"), Judgement("a", 2, "llm"))


# Two sources judge one passage: each grade is missing (None), 0 (judged non-relevant), 1 or 3.
GRADES = (None, 0, 1, 3)
SELECTIONS = (None, frozenset({"human"}), frozenset({"llm"}), frozenset({"human", "llm"}))


def _expected(human: int | None, llm: int | None, selection, min_grade: int, conflict: LabelConflict):
    """What the documented rule makes of the pair: ("positive", grade, source), ("excluded",) or ("unlabelled",)."""
    chosen = {
        source: grade
        for source, grade in (("human", human), ("llm", llm))
        if grade is not None and (selection is None or source in selection)
    }
    if conflict is LabelConflict.PREFER_HUMAN and "human" in chosen:
        chosen = {"human": chosen["human"]}
    decided = None
    if chosen:
        grade = (min if conflict is LabelConflict.MIN else max)(chosen.values())
        decided = (grade, next(source for source, g in chosen.items() if g == grade))
    if decided is not None and decided[0] >= max(min_grade, 1):
        return ("positive", *decided)
    if any(grade is not None and grade > 0 for grade in (human, llm)):
        return ("excluded",)  # judged relevant by some source: never a negative
    return ("unlabelled",)


@pytest.mark.parametrize("conflict", list(LabelConflict))
@pytest.mark.parametrize("min_grade", [1, 3])
@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: "+".join(sorted(s)) if s else "any")
@pytest.mark.parametrize(("human", "llm"), [pair for pair in itertools.product(GRADES, GRADES) if pair != (None, None)])
def test_every_agreement_disagreement_and_missing_judgement(
    human: int | None, llm: int | None, selection, min_grade: int, conflict: LabelConflict
) -> None:
    files = [
        {"q1": {"p": Judgement("p", grade, source)}} if grade is not None else {}
        for source, grade in (("human", human), ("llm", llm))
    ]
    anchor = {"q1": {"anchor": Judgement("anchor", 3, "anchor")}}  # keeps q1 an example whatever p becomes
    label_filter = LabelFilter(min_grade, selection | {"anchor"} if selection else None, conflict)
    (example,) = build_examples(QUERIES, merge_qrels([anchor, *files]), label_filter)
    positives = {p.doc_id: (p.grade, p.source) for p in example.positives}
    if "p" in positives:
        outcome = ("positive", *positives["p"])
    else:
        outcome = ("excluded",) if "p" in example.excluded else ("unlabelled",)
    assert outcome == _expected(human, llm, selection, min_grade, conflict)


@pytest.mark.parametrize(
    ("sources", "conflict", "expected"),
    [
        (None, "max", ("positive", 3, "llm")),  # pooled: the LLM's positive counts
        (None, "min", ("excluded",)),  # both must agree; the human said no
        (None, "prefer-human", ("excluded",)),  # the human judgement overrides the LLM's
        (["human"], "max", ("excluded",)),  # only the human's judgement counts; the LLM's keeps it from negatives
        (["llm"], "prefer-human", ("positive", 3, "llm")),  # no selected human: the LLM decides
    ],
)
def test_human_0_against_llm_3(sources, conflict: str, expected: tuple) -> None:
    human = {"q1": {"p": Judgement("p", 0, "human"), "a": Judgement("a", 2, "human")}}
    llm = {"q1": {"p": Judgement("p", 3, "llm"), "a": Judgement("a", 2, "llm")}}  # "a": both agree, a positive
    merged = merge_qrels([human, llm])
    (example,) = build_examples(QUERIES, merged, LabelFilter.from_options(1, sources, conflict))
    positives = {p.doc_id: (p.grade, p.source) for p in example.positives}
    outcome = ("positive", *positives["p"]) if "p" in positives else ("excluded",) if "p" in example.excluded else ()
    assert outcome == expected


@pytest.mark.parametrize(
    ("human", "llm", "conflict", "expected"),
    [
        (3, None, "max", ("positive", 3, "human")),
        (2, None, "max", ("excluded",)),  # below the human minimum
        (None, 1, "max", ("positive", 1, "llm")),  # at the LLM's own minimum
        (2, 1, "max", ("positive", 1, "llm")),  # the passing judgement decides, not the higher failing one
        (3, 1, "min", ("positive", 1, "llm")),  # both pass: the lowest grade is recorded
        (2, 3, "min", ("excluded",)),  # the human fails its minimum
        (2, 3, "prefer-human", ("excluded",)),  # the human decides, and fails
        (None, 1, "prefer-human", ("positive", 1, "llm")),
        (0, 0, "max", ("unlabelled",)),
    ],
)
def test_each_source_can_have_its_own_minimum_grade(
    human: int | None, llm: int | None, conflict: str, expected: tuple
) -> None:
    files = [
        {"q1": {"p": Judgement("p", grade, source)}} if grade is not None else {}
        for source, grade in (("human", human), ("llm", llm))
    ]
    anchor = {"q1": {"anchor": Judgement("anchor", 3, "human")}}
    label_filter = LabelFilter.from_options(3, None, conflict, {"llm": 1})
    (example,) = build_examples(QUERIES, merge_qrels([anchor, *files]), label_filter)
    positives = {p.doc_id: (p.grade, p.source) for p in example.positives}
    outcome = (
        ("positive", *positives["p"])
        if "p" in positives
        else ("excluded",)
        if "p" in example.excluded
        else ("unlabelled",)
    )
    assert outcome == expected


def test_per_source_minimums_in_the_record_and_the_description() -> None:
    label_filter = LabelFilter.from_options(3, ["human", "llm"], "max", {"llm": 1})
    assert label_filter.minimum("llm") == 1 and label_filter.minimum("human") == 3
    assert label_filter.record()["source_min_grade"] == {"llm": 1}
    assert str(label_filter) == "grade >= 3, llm grade >= 1, sources: human, llm, conflicts: max"
    assert "source_min_grade" not in LabelFilter.from_options(3).record()  # earlier manifests stay identical
    assert LabelFilter.from_options(1, None, "max", {"llm": 0}).minimum("llm") == 1  # grade 0 is never a positive
    with pytest.raises(ValueError, match="minimum grade of source 'llm' must be an integer"):
        LabelFilter.from_options(1, None, "max", {"llm": "high"})  # type: ignore[dict-item]


def test_label_filter_from_options_and_its_record() -> None:
    label_filter = LabelFilter.from_options(2, ["llm", "human"], "prefer-human")
    assert label_filter == LabelFilter(2, frozenset({"human", "llm"}), LabelConflict.PREFER_HUMAN)
    assert label_filter.record() == {"min_grade": 2, "sources": ["human", "llm"], "conflict": "prefer-human"}
    assert LabelFilter.from_options(1, [], "max").sources is None
    with pytest.raises(ValueError, match="label_conflict must be one of max, min, prefer-human, got 'both'"):
        LabelFilter.from_options(1, None, "both")


def test_the_command_line_offers_every_conflict_rule() -> None:
    from mpretriever.cli.train import LabelConflictName

    assert [name.value for name in LabelConflictName] == [rule.value for rule in LabelConflict]


def test_source_human_keeps_passages_an_llm_file_grades_higher(tiny_beir: Path, tmp_path: Path) -> None:
    """The dataset's human qrels (grade 1 for every positive) plus an LLM file grading the same pairs 2."""
    dataset = BeirDataset(tiny_beir)
    human = dataset.qrels("train")
    llm_file = tmp_path / "llm.tsv"
    write_qrels(llm_file, [(q, d, 2) for q, judged in human.items() for d in judged])
    llm = load_qrels(llm_file, dataset.queries, dataset.doc_index, default_source="llm")
    examples = build_examples(dataset.queries, merge_qrels([human, llm]), LabelFilter(sources=frozenset({"human"})))
    assert len(examples) == 12
    assert {(p.grade, p.source) for e in examples for p in e.positives} == {(1, "human")}
    assert all(e.excluded == frozenset() for e in examples)


def test_graded_regimes_on_the_tiny_dataset(tiny_beir) -> None:
    dataset = BeirDataset(tiny_beir)
    qrels = merge_qrels([dataset.qrels("train-graded")])
    strong = build_examples(dataset.queries, qrels, LabelFilter(min_grade=3))
    everything = build_examples(dataset.queries, qrels, LabelFilter(min_grade=1))
    assert {len(e.positives) for e in strong} == {1}
    assert {len(e.excluded) for e in strong} == {2}
    assert {len(e.positives) for e in everything} == {3}
