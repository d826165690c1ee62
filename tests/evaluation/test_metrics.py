"""Measures by trec_eval (pytrec_eval) checked against values computed by hand, binary and graded."""

from __future__ import annotations

import math

import pytest

from mpretriever.evaluation.metrics import (
    DEFAULT_MEASURES,
    evaluate_run,
    mean_values,
    parse_measure,
    parse_measures,
    relevant_queries,
    required_depth,
)

# q1, binary: relevant d1, d3 and d9 (never retrieved); d2 judged non-relevant (grade 0).
# q2: one relevant document, retrieved at rank 12.
# q3, graded: a=2, b=1, e=3 (never retrieved); c judged non-relevant.
# q4: judged, but nothing relevant.
QRELS = {
    "q1": {"d1": 1, "d2": 0, "d3": 1, "d9": 1},
    "q2": {"r": 1},
    "q3": {"a": 2, "b": 1, "c": 0, "e": 3},
    "q4": {"x": 0},
}
RUN = {
    "q1": [("d2", 0.9), ("d1", 0.8), ("d5", 0.7), ("d3", 0.6), ("d6", 0.5)],
    "q2": [(f"z{i:02d}", 1.0 - i / 100) for i in range(1, 12)] + [("r", 0.5)],
    "q3": [("b", 0.9), ("c", 0.8), ("a", 0.7)],
    "q4": [("x", 0.9)],
}
LOG2 = math.log2


def _values(*names: str) -> dict[str, dict[str, float]]:
    return evaluate_run(QRELS, RUN, parse_measures(names))


def test_binary_query_by_hand() -> None:
    values = _values("nDCG@5", "Recall@5", "MRR@10", "MAP@100", "P@5", "map")["q1"]
    # relevant at ranks 2 and 4 of 5; R = 3 relevant documents in all
    dcg = 1 / LOG2(2 + 1) + 1 / LOG2(4 + 1)  # 0.63093 + 0.43068 = 1.06161
    ideal = 1 / LOG2(1 + 1) + 1 / LOG2(2 + 1) + 1 / LOG2(3 + 1)  # 1 + 0.63093 + 0.5 = 2.13093
    assert values["nDCG@5"] == pytest.approx(dcg / ideal, abs=1e-4)  # 0.49819
    assert values["Recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert values["MRR@10"] == pytest.approx(1 / 2, abs=1e-4)
    average_precision = (1 / 2 + 2 / 4) / 3  # precision at each relevant rank, over R = 3
    assert values["MAP@100"] == pytest.approx(average_precision, abs=1e-4)  # 0.33333
    assert values["map"] == pytest.approx(average_precision, abs=1e-4)
    assert values["P@5"] == pytest.approx(2 / 5, abs=1e-4)


def test_mrr_at_10_is_zero_when_the_first_relevant_document_is_at_rank_12() -> None:
    values = _values("MRR@10", "recip_rank", "Recall@10", "Recall@100", "nDCG@10")["q2"]
    assert values["MRR@10"] == 0.0  # the run is cut to its top 10 first
    assert values["recip_rank"] == pytest.approx(1 / 12, abs=1e-4)  # trec_eval's own, over the whole run
    assert values["Recall@10"] == 0.0 and values["nDCG@10"] == 0.0
    assert values["Recall@100"] == pytest.approx(1.0)


def test_graded_ndcg_uses_the_grades_as_gains() -> None:
    values = _values("nDCG@3", "nDCG@10", "MRR@10", "Recall@100")["q3"]
    # ranks: b (grade 1), c (0), a (2); the ideal ranking is e (3), a (2), b (1)
    dcg = 1 / LOG2(1 + 1) + 0 / LOG2(2 + 1) + 2 / LOG2(3 + 1)  # 1 + 0 + 1 = 2
    ideal = 3 / LOG2(1 + 1) + 2 / LOG2(2 + 1) + 1 / LOG2(3 + 1)  # 3 + 1.26186 + 0.5 = 4.76186
    assert values["nDCG@3"] == pytest.approx(dcg / ideal, abs=1e-4)  # 0.42001
    assert values["nDCG@10"] == pytest.approx(dcg / ideal, abs=1e-4)  # nothing else retrieved
    binary_dcg, binary_ideal = 1 + 1 / LOG2(4), 1 + 1 / LOG2(3) + 1 / LOG2(4)  # what binarised grades would give
    assert values["nDCG@3"] != pytest.approx(binary_dcg / binary_ideal, abs=1e-3)
    assert values["MRR@10"] == pytest.approx(1.0)  # b (grade 1) is relevant
    assert values["Recall@100"] == pytest.approx(2 / 3, abs=1e-4)  # a and b of a, b, e; c (grade 0) is not


def test_queries_without_a_relevant_document_are_left_out_of_the_mean() -> None:
    assert relevant_queries(QRELS) == {"q1", "q2", "q3"}
    measures = parse_measures(["MRR@10"])
    per_query = evaluate_run(QRELS, RUN, measures)
    assert set(per_query) == {"q1", "q2", "q3"}
    assert mean_values(per_query, measures)["MRR@10"] == pytest.approx((1 / 2 + 0 + 1) / 3, abs=1e-4)


def test_a_query_the_run_misses_scores_zero() -> None:
    measures = parse_measures(["nDCG@10", "MRR@10"])
    per_query = evaluate_run(QRELS, {"q1": RUN["q1"]}, measures)
    assert per_query["q2"] == {"nDCG@10": 0.0, "MRR@10": 0.0}
    assert per_query["q3"] == {"nDCG@10": 0.0, "MRR@10": 0.0}
    assert per_query["q1"]["MRR@10"] == pytest.approx(0.5)


def test_ties_are_ranked_as_trec_eval_ranks_them_before_the_cut() -> None:
    qrels = {"q": {"d1": 1}}
    run = {"q": [("d1", 0.5), ("d2", 0.5)]}  # a tie: trec_eval ranks the larger id, d2, first
    values = evaluate_run(qrels, run, parse_measures(["MRR@1", "MRR@2", "recip_rank"]))["q"]
    assert values == {"MRR@1": 0.0, "MRR@2": pytest.approx(0.5), "recip_rank": pytest.approx(0.5)}


def test_measure_names_and_their_trec_eval_meaning() -> None:
    (ndcg,) = parse_measure("nDCG@10")
    assert (ndcg.trec_name, ndcg.key, ndcg.depth) == ("ndcg_cut.10", "ndcg_cut_10", 10)
    (mrr,) = parse_measure("mrr@10")
    assert (mrr.label, mrr.key, mrr.run_cutoff) == ("MRR@10", "recip_rank", 10)
    assert mrr.describe() == "recip_rank on the run cut to its top 10"
    assert [m.key for m in parse_measures(DEFAULT_MEASURES)] == [
        "ndcg_cut_10",
        "recall_100",
        "recip_rank",
        "map_cut_100",
    ]
    assert [(m.label, m.depth) for m in parse_measures(["P_5", "ndcg_cut_20", "bpref", "ndcg_cut.5"])] == [
        ("P_5", 5),
        ("ndcg_cut_20", 20),
        ("bpref", None),
        ("ndcg_cut_5", 5),
    ]
    default_cutoffs = parse_measure("ndcg_cut")  # trec_eval's default cutoffs, one measure each
    assert "ndcg_cut_10" in [m.key for m in default_cutoffs] and len(default_cutoffs) > 3
    assert required_depth(parse_measures(["nDCG@10", "Recall@100", "bpref"])) == 100
    assert required_depth(parse_measures(["bpref"])) == 0
    assert [m.label for m in parse_measures(["nDCG@10", "ndcg@10", "P_5"])] == ["nDCG@10", "P_5"]


@pytest.mark.parametrize(("name", "message"), [("foo@3", "the @k names are"), ("ndgc_cut_10", "unknown measure")])
def test_unknown_measures_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_measure(name)


def test_evaluators_with_different_cutoffs_do_not_interfere() -> None:
    first = evaluate_run(QRELS, RUN, parse_measures(["nDCG@5"]))
    evaluate_run(QRELS, RUN, parse_measures(["nDCG@3", "ndcg_cut_20", "P_2"]))
    assert evaluate_run(QRELS, RUN, parse_measures(["nDCG@5"])) == first


def test_a_bare_measure_and_the_same_measure_with_a_cutoff_are_both_computed() -> None:
    values = _values("ndcg_cut", "nDCG@5")["q1"]
    assert values["ndcg_cut_5"] == pytest.approx(values["nDCG@5"]) and values["nDCG@5"] > 0.4
    assert values["ndcg_cut_10"] == pytest.approx(values["nDCG@5"])  # nothing relevant below rank 5
