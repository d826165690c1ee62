"""Evaluation: BEIR-style retrieval measures by trec_eval (pytrec_eval), TREC run files, ``mpr eval``'s runner.

``evaluate_retrieval(EvalConfig(...))`` is what ``mpr eval`` runs; :mod:`~mpretriever.evaluation.metrics` (measure
names, per-query values, means) and :mod:`~mpretriever.evaluation.runs` (TREC run files) work on any run.
"""

from mpretriever.evaluation.metrics import (
    DEFAULT_MEASURES,
    Measure,
    evaluate_run,
    mean_values,
    parse_measure,
    parse_measures,
    relevant_queries,
    required_depth,
)
from mpretriever.evaluation.retrieval import EvalConfig, EvalReport, ModeResult, evaluate_retrieval
from mpretriever.evaluation.runs import cut_run, format_run, read_run, to_pytrec, write_run

__all__ = [
    "DEFAULT_MEASURES",
    "EvalConfig",
    "EvalReport",
    "Measure",
    "ModeResult",
    "cut_run",
    "evaluate_retrieval",
    "evaluate_run",
    "format_run",
    "mean_values",
    "parse_measure",
    "parse_measures",
    "read_run",
    "relevant_queries",
    "required_depth",
    "to_pytrec",
    "write_run",
]
