"""Paired significance tests on per-query values: is system B better than system A on the same queries?

Use it on the ``per-query-<mode>.json`` files ``mpr eval --output`` writes (``{query id: {measure: value}}``) or on
:class:`~mpretriever.evaluation.retrieval.ModeResult` values. The tests are scipy's: the paired two-sided t-test
(the usual choice in IR evaluation, Smucker et al. 2007) or the Wilcoxon signed-rank test; several comparisons
against one baseline are corrected with Holm's step-down method, which controls the family-wise error rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import stats

from mpretriever.files import write_text_atomically

PairedTestName = Literal["t-test", "wilcoxon"]
PerQuery = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class PairedComparison:
    """System against baseline on one measure, over the queries both were evaluated on."""

    measure: str
    queries: int
    baseline_mean: float
    system_mean: float
    statistic: float
    p_value: float
    test: PairedTestName
    adjusted_p_value: float | None = None

    @property
    def difference(self) -> float:
        return self.system_mean - self.baseline_mean

    def significant(self, alpha: float = 0.05) -> bool:
        p_value = self.adjusted_p_value if self.adjusted_p_value is not None else self.p_value
        return p_value < alpha


def load_per_query(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a ``per-query-<mode>.json`` file written by ``mpr eval --output``."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def save_per_query(path: str | Path, per_query: Mapping[str, Mapping[str, float]]) -> Path:
    """Write per-query values (query id -> measure -> value) as :func:`load_per_query` reads them, atomically."""
    return write_text_atomically(path, json.dumps(per_query, indent=1, sort_keys=True) + "\n")


def paired_test(
    baseline: PerQuery, system: PerQuery, measure: str, test: PairedTestName = "t-test"
) -> PairedComparison:
    """Compare ``system`` with ``baseline`` on ``measure`` over their common queries (two-sided).

    Identical values on every query give ``p = 1`` (no evidence of a difference) rather than NaN.
    """
    common = sorted(set(baseline) & set(system))
    if len(common) < 2:
        raise ValueError(f"a paired test needs at least 2 queries both systems answered; they share {len(common)}")
    missing = [query for query in common if measure not in baseline[query] or measure not in system[query]]
    if missing:
        raise ValueError(f"measure {measure!r} is missing for {len(missing)} queries, e.g. {missing[0]!r}")
    a = np.array([baseline[query][measure] for query in common], dtype=np.float64)
    b = np.array([system[query][measure] for query in common], dtype=np.float64)
    if np.allclose(a, b):
        statistic, p_value = 0.0, 1.0
    elif test == "t-test":
        result = stats.ttest_rel(b, a)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    elif test == "wilcoxon":
        result = stats.wilcoxon(b, a, zero_method="wilcox")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        raise ValueError(f"test must be 't-test' or 'wilcoxon', got {test!r}")
    return PairedComparison(measure, len(common), float(a.mean()), float(b.mean()), statistic, p_value, test)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def compare_to_baseline(
    baseline: PerQuery,
    systems: Mapping[str, PerQuery],
    measure: str,
    test: PairedTestName = "t-test",
) -> dict[str, PairedComparison]:
    """Every system against one baseline on ``measure``, with Holm-adjusted p-values across the systems."""
    raw = {name: paired_test(baseline, values, measure, test) for name, values in systems.items()}
    adjusted = holm([comparison.p_value for comparison in raw.values()])
    return {
        name: PairedComparison(**{**comparison.__dict__, "adjusted_p_value": p_value})
        for (name, comparison), p_value in zip(raw.items(), adjusted, strict=True)
    }
