"""Retrieval measures, computed by ``trec_eval`` through pytrec_eval: names, cutoffs, per-query values, means.

Measures are named either the BEIR way or the ``trec_eval`` way:

============== =========================================== ==========================================
name           computed as (pytrec_eval)                   meaning
============== =========================================== ==========================================
``nDCG@k``     ``ndcg_cut_k``                              graded nDCG of the top k (gain = the grade)
``Recall@k``   ``recall_k``                                relevant documents in the top k / relevant
``MRR@k``      ``recip_rank`` on the run cut to its top k  1 / rank of the first relevant document
``MAP@k``      ``map_cut_k``                               average precision of the top k
``P@k``        ``P_k``                                     precision of the top k
``Success@k``  ``success_k``                               1 if a relevant document is in the top k
============== =========================================== ==========================================

(``trec_eval`` has no cutoff for ``recip_rank``, so ``MRR@k`` cuts the run first, as BEIR does.) Any other
``trec_eval`` measure is accepted as pytrec_eval spells it, e.g. ``P_5``, ``ndcg_cut_20``, ``bpref``,
``recip_rank`` (over the whole run), ``map`` or ``ndcg``; a parameterised measure named without its parameters
(``ndcg_cut``) gives one value per default cutoff of ``trec_eval``.

Relevance follows the qrels: grades are kept (nDCG uses them as gains), a grade of at least 1 is relevant (for
recall, MRR, MAP, precision) and a grade of 0 is judged non-relevant. Queries whose qrels hold no relevant
document are left out (see :func:`relevant_queries`), as BEIR leaves them out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import pytrec_eval

from mpretriever.evaluation.runs import Run, cut_run, to_pytrec
from mpretriever.search.ranking import Hit

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "Recall@100", "MRR@10", "MAP@100")
RELEVANCE_LEVEL = 1

ALIASES: dict[str, tuple[str, str]] = {
    # lower-case alias: (label, trec_eval measure taking the cutoff as its parameter; "" for the cut-run MRR)
    "ndcg": ("nDCG", "ndcg_cut"),
    "recall": ("Recall", "recall"),
    "mrr": ("MRR", ""),
    "map": ("MAP", "map_cut"),
    "p": ("P", "P"),
    "success": ("Success", "success"),
}
CUTOFF_MEASURES = ("P", "recall", "ndcg_cut", "map_cut", "success", "relative_P")
ALIAS_PATTERN = re.compile(r"^([A-Za-z]+)@(\d+)$")
KEY_CUTOFF = re.compile(r"^(?P<measure>.+)_(?P<cutoff>\d+)$")

Qrels = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Measure:
    """One value computed per query.

    ``label``: how it is shown and saved (``nDCG@10``, ``P_5``); ``trec_name``: what pytrec_eval is asked for
    (``ndcg_cut.10``); ``key``: the name of the value pytrec_eval returns (``ndcg_cut_10``); ``run_cutoff``: the
    run is cut to its top N before evaluation (``MRR@N``); ``depth``: how many ranks the measure looks at, when
    limited (the run must reach that deep for a fair value).
    """

    label: str
    trec_name: str
    key: str
    run_cutoff: int | None = None
    depth: int | None = None

    def describe(self) -> str:
        """The computation in words, e.g. ``recip_rank on the run cut to its top 10``."""
        if self.run_cutoff is not None:
            return f"{self.key} on the run cut to its top {self.run_cutoff}"
        return self.key


@lru_cache(maxsize=256)
def _output_keys(trec_name: str) -> tuple[str, ...]:
    """The value names pytrec_eval returns for ``trec_name`` (a nickname or an unparameterised measure expands
    to several), found by evaluating a one-document run. Raises ``ValueError`` for an unknown measure."""
    evaluator = pytrec_eval.RelevanceEvaluator({"q": {"d": 1}}, {trec_name})
    return tuple(sorted(evaluator.evaluate({"q": {"d": 1.0}})["q"]))


def _depth(key: str) -> int | None:
    match = KEY_CUTOFF.match(key)
    if match and match["measure"] in CUTOFF_MEASURES:
        return int(match["cutoff"])
    return None


def parse_measure(name: str) -> list[Measure]:
    """The measures a user-given name stands for: a BEIR-style alias (``nDCG@10``, case-insensitive) or a
    ``trec_eval`` measure as pytrec_eval spells it (``P_5``, ``ndcg_cut.20``, ``bpref``, ``ndcg_cut``)."""
    name = name.strip()
    alias = ALIAS_PATTERN.match(name)
    if alias:
        base, cutoff = alias[1].lower(), int(alias[2])
        if base not in ALIASES:
            known = ", ".join(f"{label}@k" for label, _ in ALIASES.values())
            raise ValueError(f"unknown measure {name!r}: the @k names are {known}")
        if cutoff < 1:
            raise ValueError(f"the cutoff of {name!r} must be at least 1")
        label, trec_measure = ALIASES[base]
        if not trec_measure:
            return [Measure(f"{label}@{cutoff}", "recip_rank", "recip_rank", run_cutoff=cutoff, depth=cutoff)]
        trec_name = f"{trec_measure}.{cutoff}"
        return [Measure(f"{label}@{cutoff}", trec_name, f"{trec_measure}_{cutoff}", depth=cutoff)]
    try:
        keys = _output_keys(name)
    except ValueError:
        raise ValueError(
            f"unknown measure {name!r}: use nDCG@k, Recall@k, MRR@k, MAP@k, P@k, Success@k or a trec_eval measure "
            "as pytrec_eval names it (e.g. P_5, ndcg_cut_20, recall_1000, bpref, recip_rank, map)"
        ) from None
    if len(keys) == 1:
        return [Measure(keys[0], name, keys[0], depth=_depth(keys[0]))]
    return [Measure(key, name, key, depth=_depth(key)) for key in keys]


def parse_measures(names: Iterable[str]) -> list[Measure]:
    """Every measure of ``names`` (see :func:`parse_measure`), in order, without duplicates."""
    measures: dict[str, Measure] = {}
    for name in names:
        for measure in parse_measure(name):
            measures.setdefault(measure.label, measure)
    if not measures:
        raise ValueError("no measure requested")
    return list(measures.values())


def required_depth(measures: Sequence[Measure]) -> int:
    """The deepest rank any of ``measures`` looks at (0 when none is limited): the least ``top_k`` to search."""
    return max((m.depth for m in measures if m.depth is not None), default=0)


def relevant_queries(qrels: Qrels, relevance_level: int = RELEVANCE_LEVEL) -> set[str]:
    """The queries with at least one relevant document (grade ``>= relevance_level``); only these are evaluated
    (a query without any has no defined recall, MRR or nDCG; BEIR skips it too)."""
    return {query_id for query_id, judged in qrels.items() if any(g >= relevance_level for g in judged.values())}


def evaluate_run(
    qrels: Qrels,
    run: Run,
    measures: Sequence[Measure],
    queries: Iterable[str] | None = None,
    relevance_level: int = RELEVANCE_LEVEL,
) -> dict[str, dict[str, float]]:
    """Per-query values ``{query_id: {label: value}}`` of ``measures`` for a ranked ``run``, by pytrec_eval.

    ``queries`` (default: every query of ``qrels`` with a relevant document) are the ones evaluated; one the run
    retrieves nothing for scores 0 (pytrec_eval skips it). Measures with a ``run_cutoff`` are computed on the run
    cut to that depth (in ``trec_eval``'s order).
    """
    evaluated = sorted(relevant_queries(qrels, relevance_level) if queries is None else set(queries))
    judged = {query_id: dict(qrels[query_id]) for query_id in evaluated if query_id in qrels}
    missing = [query_id for query_id in evaluated if query_id not in judged]
    if missing:
        raise ValueError(f"{len(missing)} queries to evaluate have no qrels, e.g. {missing[0]!r}")
    values: dict[str, dict[str, float]] = {query_id: {} for query_id in evaluated}
    groups: dict[tuple[int | None, str], list[Measure]] = {}
    for measure in measures:  # one evaluator per name: pytrec_eval would merge ndcg_cut with ndcg_cut.10 into one
        groups.setdefault((measure.run_cutoff, measure.trec_name), []).append(measure)
    full = {query_id: run.get(query_id, []) for query_id in evaluated}
    cut: dict[int, dict[str, list[Hit]]] = {}
    for (cutoff, trec_name), group in groups.items():
        if cutoff is not None and cutoff not in cut:
            cut[cutoff] = cut_run(full, cutoff)
        ranked: Run = full if cutoff is None else cut[cutoff]
        scores = {query_id: hits for query_id, hits in to_pytrec(ranked).items() if hits}
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {trec_name}, relevance_level=relevance_level)
        results = evaluator.evaluate(scores)
        for query_id in evaluated:
            found = results.get(query_id)
            for measure in group:
                values[query_id][measure.label] = 0.0 if found is None else float(found[measure.key])
    return values


def mean_values(per_query: Mapping[str, Mapping[str, float]], measures: Sequence[Measure]) -> dict[str, float]:
    """The aggregate of each measure over the queries, as ``trec_eval`` aggregates it (the mean; the sum for
    ``num_*``, the geometric mean for ``gm_*``)."""
    if not per_query:
        raise ValueError("no query to average over")
    return {
        m.label: pytrec_eval.compute_aggregated_measure(m.key, [values[m.label] for values in per_query.values()])
        for m in measures
    }
