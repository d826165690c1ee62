"""Answer matching for open-domain QA: DPR-style ``has_answer`` on passages, SQuAD EM / F1 on predictions.

``has_answer(passage, answers)`` follows the rule the QA datasets' MANIFEST files document (DPR's matcher):
Unicode NFD, tokens are runs of ``[\\p{L}\\p{N}\\p{M}]+`` or single non-space characters, lower-cased, and an
answer matches when its token sequence occurs as a contiguous run of the passage's tokens (so "four" does not
match "fourth"). Answers without any letter or digit (a stray ``"."`` annotation) are skipped: they would
match almost every passage.

Exact match and token F1 are the official SQuAD v1.1 measures (lower-case, strip punctuation and the articles
a / an / the, collapse whitespace; F1 over the bag of tokens), each the maximum over the gold answers, computed
by ``torchmetrics.functional.text.squad`` (the official script, maintained) and scaled to 0..1.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex

from mpretriever.data.errors import DataFormatError
from mpretriever.data.text_files import numbered_records

TOKEN = regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}\s]")
ALPHANUMERIC = regex.compile(r"[\p{L}\p{N}]")


def answer_tokens(text: str) -> list[str]:
    """The matching tokens of ``text``: NFD-normalised, lower-cased runs of letters / digits / marks, and every
    other non-space character on its own."""
    return [token.lower() for token in TOKEN.findall(unicodedata.normalize("NFD", text))]


def _joined(tokens: Sequence[str]) -> str:
    # Tokens never hold whitespace, so a contiguous token run is a substring of the space-joined tokens that
    # starts and ends at a space.
    return " " + " ".join(tokens) + " "


def usable_answers(answers: Iterable[str]) -> list[str]:
    """The answers that take part in matching: those with at least one letter or digit."""
    return [answer for answer in answers if ALPHANUMERIC.search(answer)]


class AnswerMatcher:
    """``has_answer`` for many passages against many answer lists: each passage is tokenised once."""

    def __init__(self) -> None:
        self._passages: dict[str, str] = {}

    def _passage(self, key: str, text: str) -> str:
        joined = self._passages.get(key)
        if joined is None:
            joined = self._passages[key] = _joined(answer_tokens(text))
        return joined

    def has_answer(self, passage: str, answers: Iterable[str], key: str | None = None) -> bool:
        """Whether ``passage`` contains any of ``answers`` (see the module doc); ``key`` (e.g. the document id)
        caches the passage's tokens."""
        joined = self._passage(key, passage) if key is not None else _joined(answer_tokens(passage))
        for answer in usable_answers(answers):
            tokens = answer_tokens(answer)
            if tokens and _joined(tokens) in joined:
                return True
        return False


def has_answer(passage: str, answers: Iterable[str]) -> bool:
    """Whether ``passage`` contains one of ``answers`` as a contiguous token run (DPR's rule; see the module doc).

    >>> has_answer("Wilhelm Conrad Röntgen won it.", ["wilhelm conrad rontgen"])
    False
    >>> has_answer("He finished fourth.", ["four"])
    False
    """
    return AnswerMatcher().has_answer(passage, answers)


@dataclass(frozen=True)
class AnswerScore:
    """SQuAD exact match and token F1 of one prediction, each in 0..1 (the maximum over the gold answers)."""

    exact_match: float
    f1: float


def squad_score(prediction: str, answers: Sequence[str]) -> AnswerScore:
    """The official SQuAD v1.1 EM and F1 of ``prediction`` against the gold ``answers`` (max over them), by
    torchmetrics. Raises ``ValueError`` without a gold answer."""
    from torchmetrics.functional.text import squad

    if not answers:
        raise ValueError("no gold answer to score against")
    scores = squad(
        [{"prediction_text": prediction, "id": "q"}],
        [{"answers": {"answer_start": [0] * len(answers), "text": list(answers)}, "id": "q"}],
    )
    return AnswerScore(exact_match=float(scores["exact_match"]) / 100, f1=float(scores["f1"]) / 100)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD exact match (1.0 or 0.0) after SQuAD normalisation, against any of ``answers``."""
    return squad_score(prediction, answers).exact_match


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 (0..1), the best over ``answers``."""
    return squad_score(prediction, answers).f1


def read_answers(queries_path: str | Path, field: str = "answers") -> dict[str, list[str]]:
    """The gold answers of each query of a BEIR ``queries.jsonl[.gz]`` (``metadata.<field>``, a list of strings).

    Queries without the field, or with an empty list, are left out; an empty result means the dataset has no
    answers. :class:`~mpretriever.data.beir.BeirDataset` reads only ids and texts, hence this reader.
    """
    path = Path(queries_path)
    answers: dict[str, list[str]] = {}
    for number, row in numbered_records(path):
        metadata = row.get("metadata")
        values = metadata.get(field) if isinstance(metadata, Mapping) else None
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise DataFormatError(path, f"metadata.{field} must be a list of strings", line=number)
        if values and "_id" in row:
            answers.setdefault(str(row["_id"]), values)
    return answers
