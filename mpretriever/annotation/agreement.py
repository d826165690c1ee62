"""How far LLM judgements agree with human ones, on the pairs both judged.

- Cohen's kappa (scikit-learn) on the grades, unweighted and with quadratic weights (grades are ordered);
- the confusion matrix, human grades by row and LLM grades by column;
- precision and recall of "LLM grade >= ``llm_threshold``" (default 2, partly answers) against human relevance
  (human grade >= 1, as BEIR counts a positive);
- the new positives per annotated query: LLM positives among passages the humans never judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mpretriever.data.beir import Qrels

LLM_POSITIVE = 2
HUMAN_POSITIVE = 1


@dataclass(frozen=True)
class Agreement:
    pairs: int
    kappa: float | None
    weighted_kappa: float | None
    grades: list[int]
    confusion: list[list[int]]
    precision: float | None
    recall: float | None
    llm_threshold: int
    queries: int
    new_positives: int
    new_positives_per_query: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report printed after a run."""

        def figure(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        lines = [
            f"agreement with the human judgements on {self.pairs} pairs both judged: Cohen's kappa "
            f"{figure(self.kappa)} (quadratic-weighted {figure(self.weighted_kappa)})",
            f"LLM grade >= {self.llm_threshold} against human relevance: precision {figure(self.precision)}, "
            f"recall {figure(self.recall)}",
            f"new positives outside the human qrels: {self.new_positives} "
            f"({self.new_positives_per_query:.2f} per query over {self.queries} queries)",
            "confusion (rows human grade, columns LLM grade " + " ".join(map(str, self.grades)) + "):",
        ]
        lines += [
            f"  {grade}: " + " ".join(f"{count:5d}" for count in row)
            for grade, row in zip(self.grades, self.confusion, strict=True)
        ]
        return lines


def agreement(human: Qrels, llm: Mapping[tuple[str, str], int], llm_threshold: int = LLM_POSITIVE) -> Agreement:
    """Compare ``llm`` grades by (query, passage) with the ``human`` qrels of the same queries."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    both = sorted(pair for pair in llm if pair[1] in human.get(pair[0], {}))
    human_grades = [human[query][doc].grade for query, doc in both]
    llm_grades = [llm[pair] for pair in both]
    grades = sorted(set(human_grades) | set(llm_grades) | {0, 1, 2, 3})
    kappa = weighted = None
    if both and len(set(human_grades) | set(llm_grades)) > 1:
        kappa = float(cohen_kappa_score(human_grades, llm_grades, labels=grades))
        weighted = float(cohen_kappa_score(human_grades, llm_grades, labels=grades, weights="quadratic"))
    confusion = (
        confusion_matrix(human_grades, llm_grades, labels=grades).tolist()
        if both
        else [[0] * len(grades) for _ in grades]
    )
    human_positive = [grade >= HUMAN_POSITIVE for grade in human_grades]
    llm_positive = [grade >= llm_threshold for grade in llm_grades]
    true_positive = sum(h and m for h, m in zip(human_positive, llm_positive, strict=True))
    precision = true_positive / sum(llm_positive) if any(llm_positive) else None
    recall = true_positive / sum(human_positive) if any(human_positive) else None
    queries = {query for query, _ in llm}
    new = sum(1 for (query, doc), grade in llm.items() if grade >= llm_threshold and doc not in human.get(query, {}))
    return Agreement(
        pairs=len(both),
        kappa=kappa,
        weighted_kappa=weighted,
        grades=grades,
        confusion=confusion,
        precision=precision,
        recall=recall,
        llm_threshold=llm_threshold,
        queries=len(queries),
        new_positives=new,
        new_positives_per_query=new / len(queries) if queries else 0.0,
    )
