"""Training examples that keep every positive of a query, with its grade and its source."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mpretriever.data.beir import Judgement, Qrels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledPassage:
    """A positive passage of a query, with its relevance grade and the source of the label (human, llm, ...)."""

    doc_id: str
    grade: int
    source: str


@dataclass(frozen=True)
class LabelFilter:
    """Which judgements count as positives: a minimum grade and, optionally, a set of label sources.

    Judged-relevant passages (grade > 0) that the filter rejects are *excluded*, never used as negatives: with
    ``min_grade=3`` on NFCorpus' graded qrels the grade-1 and grade-2 passages are neither positives nor negatives.
    """

    min_grade: int = 1
    sources: frozenset[str] | None = None

    def accepts(self, judgement: Judgement) -> bool:
        return judgement.grade >= self.min_grade and (self.sources is None or judgement.source in self.sources)


@dataclass(frozen=True)
class TrainingExample:
    """A query with all of its positives (best grade first), excluded passages and optional hard negatives."""

    query_id: str
    query: str
    positives: tuple[LabelledPassage, ...]
    excluded: frozenset[str] = frozenset()
    hard_negatives: tuple[str, ...] = ()


def merge_qrels(qrels_list: Iterable[Qrels]) -> Qrels:
    """Merge judgements from several files; for a pair judged twice the higher grade wins."""
    merged: Qrels = {}
    for qrels in qrels_list:
        for query_id, judgements in qrels.items():
            target = merged.setdefault(query_id, {})
            for doc_id, judgement in judgements.items():
                if doc_id not in target or judgement.grade > target[doc_id].grade:
                    target[doc_id] = judgement
    return merged


def build_examples(
    queries: Mapping[str, str],
    qrels: Qrels,
    label_filter: LabelFilter = LabelFilter(),
    hard_negatives: Mapping[str, list[str]] | None = None,
) -> list[TrainingExample]:
    """One example per judged query that has at least one positive under ``label_filter``.

    Hard negatives that are labelled passages of the query (positive or excluded) are dropped, and counted.
    """
    examples: list[TrainingExample] = []
    without_positives = 0
    dropped_negatives = 0
    for query_id, judgements in qrels.items():
        relevant = [j for j in judgements.values() if j.grade > 0]
        positives = [j for j in relevant if label_filter.accepts(j)]
        if not positives:
            without_positives += 1
            continue
        positives.sort(key=lambda j: -j.grade)
        negatives = (hard_negatives or {}).get(query_id, [])
        kept_negatives = tuple(doc_id for doc_id in negatives if doc_id not in judgements)
        dropped_negatives += len(negatives) - len(kept_negatives)
        examples.append(
            TrainingExample(
                query_id=query_id,
                query=queries[query_id],
                positives=tuple(LabelledPassage(j.doc_id, j.grade, j.source) for j in positives),
                excluded=frozenset(j.doc_id for j in relevant if not label_filter.accepts(j)),
                hard_negatives=kept_negatives,
            )
        )
    if without_positives:
        logger.warning(
            "%d judged queries have no positive under %s and are not trained on", without_positives, label_filter
        )
    if dropped_negatives:
        logger.warning("dropped %d hard negatives that are labelled passages of their query", dropped_negatives)
    return examples
