"""Choosing negatives among a miner's candidates: labelled documents out, a rank window, a score margin, a count.

Pure functions on ids and scores, no model: which queries to mine and what each must never receive
(:func:`mining_queries`), and which of its ranked candidates become its negatives (:func:`select_negatives`).

Margins follow the convention of sentence-transformers' ``mine_hard_negatives``: with ``p`` the reference
positive score of the query (by default the *lowest* positive score, the conservative choice), a candidate is
dropped when its score is above ``p - absolute_margin`` or above ``p - |p| * relative_margin``. A margin of 0
keeps only candidates scoring no higher than the reference positive; ``relative_margin=0.05`` is the setting of
NV-Retriever's "TopK-PercPos (95%)".
"""

from __future__ import annotations

import statistics
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mpretriever.data.beir import Qrels
from mpretriever.mining.base import Candidate, MiningQuery

MarginReference = Literal["min", "mean"]


@dataclass(frozen=True)
class SelectionConfig:
    """How negatives are chosen from a query's ranked candidates.

    Ranks are 1-based positions in the miner's ranking *after* the query's labelled documents are removed:
    ``skip_top=5`` skips the five best unlabelled documents (likely unlabelled positives), ``depth=50`` looks no
    further than rank 50. The margin is applied inside that window, then the first ``max_negatives`` survivors are
    kept, in rank order.
    """

    skip_top: int = 0
    depth: int = 50
    max_negatives: int = 10
    relative_margin: float | None = None
    absolute_margin: float | None = None
    margin_reference: MarginReference = "min"

    def __post_init__(self) -> None:
        if self.skip_top < 0:
            raise ValueError(f"skip_top must be 0 or more, got {self.skip_top}")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")
        if self.skip_top >= self.depth:
            raise ValueError(
                f"skip_top ({self.skip_top}) must be smaller than depth ({self.depth}): the window of ranks "
                f"{self.skip_top + 1}..{self.depth} would be empty"
            )
        if self.max_negatives < 1:
            raise ValueError(f"max_negatives must be at least 1, got {self.max_negatives}")
        if self.relative_margin is not None and self.absolute_margin is not None:
            raise ValueError("give either a relative or an absolute margin, not both")
        for name in ("relative_margin", "absolute_margin"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        if self.margin_reference not in ("min", "mean"):
            raise ValueError(f"margin_reference must be 'min' or 'mean', got {self.margin_reference!r}")

    @property
    def has_margin(self) -> bool:
        return self.relative_margin is not None or self.absolute_margin is not None


@dataclass(frozen=True)
class Selection:
    """The negatives chosen for one query and what the filters removed.

    ``in_window``: candidates in the rank window; ``dropped_by_margin``: those of them removed by the margin;
    ``threshold``: the highest score a negative could have (``None`` without a margin or positive scores).
    """

    negatives: tuple[Candidate, ...]
    in_window: int
    dropped_by_margin: int
    threshold: float | None


def margin_threshold(positive_scores: Sequence[float], config: SelectionConfig) -> float | None:
    """The highest score a negative may have under the configured margin, or ``None`` when nothing limits it.

    ``None`` also when the query has no positive score (its positives are not in the corpus or the collection).
    """
    if not config.has_margin or not positive_scores:
        return None
    reference = min(positive_scores) if config.margin_reference == "min" else statistics.fmean(positive_scores)
    if config.absolute_margin is not None:
        return reference - config.absolute_margin
    assert config.relative_margin is not None
    return reference - abs(reference) * config.relative_margin


def select_negatives(
    candidates: Sequence[Candidate],
    excluded: Container[str],
    positive_scores: Sequence[float],
    config: SelectionConfig,
) -> Selection:
    """Negatives for one query: ``candidates`` (best first) minus ``excluded``, within the rank window, below the
    margin, at most ``config.max_negatives``, in rank order.

    Use it on the output of any :class:`~mpretriever.mining.base.Miner`; it never returns an excluded document or
    the same document twice, even if the miner did.
    """
    seen: set[str] = set()
    unlabelled: list[Candidate] = []
    for candidate in candidates:
        if candidate.doc_id in excluded or candidate.doc_id in seen:
            continue
        seen.add(candidate.doc_id)
        unlabelled.append(candidate)
    window = unlabelled[config.skip_top : config.depth]
    threshold = margin_threshold(positive_scores, config)
    kept = window if threshold is None else [c for c in window if c.score <= threshold]
    return Selection(
        negatives=tuple(kept[: config.max_negatives]),
        in_window=len(window),
        dropped_by_margin=len(window) - len(kept),
        threshold=threshold,
    )


def relevant_documents(qrels: Qrels) -> dict[str, set[str]]:
    """Documents with a grade above 0, by query."""
    relevant: dict[str, set[str]] = {}
    for query_id, judgements in qrels.items():
        docs = {doc_id for doc_id, judgement in judgements.items() if judgement.grade > 0}
        if docs:
            relevant[query_id] = docs
    return relevant


def mining_queries(queries: Mapping[str, str], qrels: Qrels, other_qrels: Iterable[Qrels] = ()) -> list[MiningQuery]:
    """The queries of ``qrels`` that have a positive (grade > 0), in qrels order, each with what it must not get.

    Every document judged for the query in ``qrels`` is excluded, whatever its grade: ``mpr train`` drops hard
    negatives judged in its qrels, so a judged non-relevant document would be lost anyway. Documents labelled
    relevant in ``other_qrels`` (other splits, LLM labels) are excluded too. Positives are listed best grade first.
    """
    also_relevant: dict[str, set[str]] = {}
    for extra in other_qrels:
        for query_id, docs in relevant_documents(extra).items():
            also_relevant.setdefault(query_id, set()).update(docs)
    mined: list[MiningQuery] = []
    for query_id, judgements in qrels.items():
        positives = sorted((j for j in judgements.values() if j.grade > 0), key=lambda j: -j.grade)
        if not positives or query_id not in queries:
            continue
        mined.append(
            MiningQuery(
                query_id=query_id,
                text=queries[query_id],
                positives=tuple(j.doc_id for j in positives),
                excluded=frozenset(judgements) | frozenset(also_relevant.get(query_id, ())),
            )
        )
    return mined
