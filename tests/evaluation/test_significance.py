"""Paired tests on constructed per-query values, checked against the textbook formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mpretriever.evaluation.significance import compare_to_baseline, holm, load_per_query, paired_test

BASELINE = {"q1": {"nDCG@10": 0.2}, "q2": {"nDCG@10": 0.4}, "q3": {"nDCG@10": 0.1}, "q4": {"nDCG@10": 0.5}}
BETTER = {"q1": {"nDCG@10": 0.3}, "q2": {"nDCG@10": 0.6}, "q3": {"nDCG@10": 0.2}, "q4": {"nDCG@10": 0.5}}


def test_paired_t_test_matches_the_formula() -> None:
    comparison = paired_test(BASELINE, BETTER, "nDCG@10")
    differences = [0.1, 0.2, 0.1, 0.0]  # per-query system - baseline
    mean = sum(differences) / 4  # 0.1
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 3)  # sqrt(0.02 / 3)
    assert comparison.statistic == pytest.approx(mean / (sd / math.sqrt(4)))  # t = 2.449...
    assert comparison.difference == pytest.approx(0.1)
    assert comparison.queries == 4
    assert 0.05 < comparison.p_value < 0.1  # t(3) = 2.449 -> p = 0.0917
    assert comparison.p_value == pytest.approx(0.0917, abs=5e-4)


def test_identical_systems_are_not_different_and_shared_queries_only() -> None:
    assert paired_test(BASELINE, BASELINE, "nDCG@10").p_value == 1.0
    partial = {"q1": {"nDCG@10": 0.3}, "q2": {"nDCG@10": 0.6}, "q9": {"nDCG@10": 1.0}}
    assert paired_test(BASELINE, partial, "nDCG@10").queries == 2
    with pytest.raises(ValueError, match="at least 2 queries"):
        paired_test(BASELINE, {"q1": {"nDCG@10": 1.0}}, "nDCG@10")
    with pytest.raises(ValueError, match="missing"):
        paired_test(BASELINE, BETTER, "MRR@10")


def test_a_large_consistent_gain_is_significant_with_both_tests() -> None:
    baseline = {f"q{i}": {"m": 0.1 * (i % 5)} for i in range(40)}
    system = {f"q{i}": {"m": 0.1 * (i % 5) + 0.05 + 0.01 * (i % 3)} for i in range(40)}
    assert paired_test(baseline, system, "m").significant()
    assert paired_test(baseline, system, "m", test="wilcoxon").p_value < 1e-6


def test_holm_adjustment() -> None:
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04): step-down, monotone
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_compare_to_baseline_reads_eval_output(tmp_path: Path) -> None:
    path = tmp_path / "per-query-exact.json"
    path.write_text(json.dumps(BETTER))
    comparisons = compare_to_baseline(BASELINE, {"lsepair": load_per_query(path), "same": BASELINE}, "nDCG@10")
    assert comparisons["same"].adjusted_p_value == 1.0
    assert comparisons["lsepair"].adjusted_p_value == pytest.approx(min(1.0, 2 * comparisons["lsepair"].p_value))
