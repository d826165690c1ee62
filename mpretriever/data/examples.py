"""Training examples that keep every positive of a query, with its grade and its source.

Label files are merged without losing a judgement: :func:`merge_qrels` keeps, for every (query, passage) pair,
the judgement of every file (human, llm, ...). A :class:`LabelFilter` then decides pair by pair which judgements
count (``--source``, ``--min-grade``) and, when the selected ones disagree, which one decides
(:class:`LabelConflict`, ``--label-conflict``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from mpretriever.data.beir import DEFAULT_SOURCE, Judgement, Qrels

logger = logging.getLogger(__name__)

MergedQrels = dict[str, dict[str, tuple[Judgement, ...]]]
"""Every judgement of every (query, passage) pair, one per label file that judged it, in the order read."""


class LabelConflict(str, Enum):
    """Which of a pair's selected judgements decides its grade when they disagree (e.g. human 0, llm 3)."""

    MAX = "max"
    """The highest selected grade: any selected source can make a passage a positive (human and LLM positives
    are pooled, the heterogeneous regime)."""

    MIN = "min"
    """The lowest selected grade: every selected source that judged the pair must find it relevant enough."""

    PREFER_HUMAN = "prefer-human"
    """A selected human judgement decides (the highest, if several); pairs no selected human judged take the
    highest other selected grade."""


@dataclass(frozen=True)
class LabelledPassage:
    """A positive passage of a query: the grade and source of the judgement that made it one, and every
    judgement of the pair (all sources, selected or not)."""

    doc_id: str
    grade: int
    source: str
    judgements: tuple[Judgement, ...] = ()


@dataclass(frozen=True)
class LabelFilter:
    """Which judgements count as positives: a minimum grade (optionally one per source), optionally a set of label
    sources, and the rule for selected judgements that disagree.

    A selected judgement *passes* when its grade is above 0 and at least its source's minimum
    (``source_min_grade``, else ``min_grade``): sources may grade on different scales, e.g. human grade 3 and
    LLM grade 1. A pair is a positive when ``conflict`` says so of its selected judgements: ``max``, any passes;
    ``min``, all pass; ``prefer-human``, any selected human one passes (any other one where no selected human
    judged it). A pair that any source judged relevant (grade > 0) but that is no positive is *excluded*, never
    used as a negative: with ``min_grade=3`` on NFCorpus' graded qrels the grade-1 and grade-2 passages are neither
    positives nor negatives, and with ``sources={"human"}`` neither are passages only an LLM found relevant.
    """

    min_grade: int = 1
    sources: frozenset[str] | None = None
    conflict: LabelConflict = LabelConflict.MAX
    source_min_grade: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_options(
        cls,
        min_grade: int = 1,
        sources: Iterable[str] | None = None,
        conflict: str = LabelConflict.MAX.value,
        source_min_grade: Mapping[str, int] | None = None,
    ) -> LabelFilter:
        """The filter of the training options ``min_grade``, ``sources`` (none or empty: every source),
        ``label_conflict`` and ``source_min_grade`` ({source: minimum grade})."""
        if conflict not in {rule.value for rule in LabelConflict}:
            choices = ", ".join(rule.value for rule in LabelConflict)
            raise ValueError(f"label_conflict must be one of {choices}, got {conflict!r}")
        for source, grade in (source_min_grade or {}).items():
            if not isinstance(grade, int) or isinstance(grade, bool):
                raise ValueError(f"the minimum grade of source {source!r} must be an integer, got {grade!r}")
        chosen = frozenset(sources or ())
        per_source = tuple(sorted((source_min_grade or {}).items()))
        return cls(min_grade, chosen or None, LabelConflict(conflict), per_source)

    def minimum(self, source: str) -> int:
        """The grade a judgement from ``source`` needs to make a positive (never below 1)."""
        return max(1, dict(self.source_min_grade).get(source, self.min_grade))

    def selected(self, judgements: Sequence[Judgement]) -> list[Judgement]:
        """The judgements that take part in the decision: those of the chosen sources (under ``prefer-human``,
        the human ones where there are any)."""
        selected = [j for j in judgements if self.sources is None or j.source in self.sources]
        if self.conflict is LabelConflict.PREFER_HUMAN:
            selected = [j for j in selected if j.source == DEFAULT_SOURCE] or selected
        return selected

    def positive(self, judgements: Sequence[Judgement]) -> Judgement | None:
        """The judgement that makes the pair a positive (the highest passing grade; under ``min``, the lowest
        grade), or ``None`` when it is none. Ties go to the judgement read first."""
        selected = self.selected(judgements)
        passing = [j for j in selected if j.grade >= self.minimum(j.source)]
        if not passing:
            return None
        if self.conflict is LabelConflict.MIN:
            return min(selected, key=lambda j: j.grade) if len(passing) == len(selected) else None
        return max(passing, key=lambda j: j.grade)

    def __str__(self) -> str:
        sources = ", ".join(sorted(self.sources)) if self.sources is not None else "any"
        grades = "".join(f", {source} grade >= {grade}" for source, grade in self.source_min_grade)
        return f"grade >= {self.min_grade}{grades}, sources: {sources}, conflicts: {self.conflict.value}"

    def record(self) -> dict[str, object]:
        """The filter as the run manifest records it (``source_min_grade`` only when set)."""
        record: dict[str, object] = {
            "min_grade": self.min_grade,
            "sources": sorted(self.sources) if self.sources is not None else None,
            "conflict": self.conflict.value,
        }
        if self.source_min_grade:
            record["source_min_grade"] = dict(self.source_min_grade)
        return record


@dataclass(frozen=True)
class TrainingExample:
    """A query with all of its positives (best grade first), excluded passages and optional hard negatives."""

    query_id: str
    query: str
    positives: tuple[LabelledPassage, ...]
    excluded: frozenset[str] = frozenset()
    hard_negatives: tuple[str, ...] = ()


def merge_qrels(qrels_list: Iterable[Qrels]) -> MergedQrels:
    """Merge judgements from several files, keeping every file's judgement of a pair (an identical repeat once)."""
    merged: MergedQrels = {}
    for qrels in qrels_list:
        for query_id, judgements in qrels.items():
            target = merged.setdefault(query_id, {})
            for doc_id, judgement in judgements.items():
                earlier = target.get(doc_id, ())
                if judgement not in earlier:
                    target[doc_id] = (*earlier, judgement)
    return merged


def strongest_judgements(merged: MergedQrels) -> Qrels:
    """The highest-grade judgement of every pair (first read on ties), for consumers that only ask whether a
    passage was judged and whether any source found it relevant (e.g. mining exclusions)."""
    return {
        query_id: {doc_id: max(judgements, key=lambda j: j.grade) for doc_id, judgements in pairs.items()}
        for query_id, pairs in merged.items()
    }


def build_examples(
    queries: Mapping[str, str],
    qrels: MergedQrels,
    label_filter: LabelFilter = LabelFilter(),
    hard_negatives: Mapping[str, list[str]] | None = None,
) -> list[TrainingExample]:
    """One example per judged query that has at least one positive under ``label_filter``.

    Hard negatives that are judged passages of the query (at any grade, by any source) are dropped, and counted.
    """
    examples: list[TrainingExample] = []
    without_positives = 0
    dropped_negatives = 0
    for query_id, pairs in qrels.items():
        positives: list[LabelledPassage] = []
        excluded: set[str] = set()
        for doc_id, judgements in pairs.items():
            decided = label_filter.positive(judgements)
            if decided is not None:
                positives.append(LabelledPassage(doc_id, decided.grade, decided.source, judgements))
            elif any(j.grade > 0 for j in judgements):
                excluded.add(doc_id)
        if not positives:
            without_positives += 1
            continue
        positives.sort(key=lambda p: -p.grade)
        negatives = (hard_negatives or {}).get(query_id, [])
        kept_negatives = tuple(doc_id for doc_id in negatives if doc_id not in pairs)
        dropped_negatives += len(negatives) - len(kept_negatives)
        examples.append(
            TrainingExample(
                query_id=query_id,
                query=queries[query_id],
                positives=tuple(positives),
                excluded=frozenset(excluded),
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
