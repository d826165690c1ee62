"""Runs: ranked results per query, and the TREC run file format they are saved in.

A run maps each query id to its hits (document id, score), best first. On disk it is the format ``trec_eval``
reads, one line per hit and six space-separated columns::

    query_id Q0 doc_id rank score tag

ranks counting from 1 in ``trec_eval``'s order (score descending, ties broken by document id descending; see
:func:`mpretriever.search.ranking.trec_order`) and scores written with every digit needed to read them back
exactly. Such files feed ``trec_eval``, ``ranx`` or significance tests between two systems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mpretriever.data.errors import DataFormatError
from mpretriever.files import write_text_atomically
from mpretriever.search.ranking import Hit, trec_order

Run = Mapping[str, Sequence[tuple[str, float]]]
DEFAULT_TAG = "mpretriever"


def cut_run(run: Run, depth: int) -> dict[str, list[Hit]]:
    """Each query's ``depth`` best hits, in ``trec_eval``'s order."""
    if depth < 1:
        raise ValueError(f"depth must be positive, got {depth}")
    return {query_id: trec_order(hits)[:depth] for query_id, hits in run.items()}


def to_pytrec(run: Run) -> dict[str, dict[str, float]]:
    """The ``{query_id: {doc_id: score}}`` form pytrec_eval evaluates (it ranks by score itself)."""
    converted: dict[str, dict[str, float]] = {}
    for query_id, hits in run.items():
        scores: dict[str, float] = {}
        for doc_id, score in hits:
            if doc_id in scores:
                raise ValueError(f"document {doc_id!r} is retrieved twice for query {query_id!r}")
            scores[doc_id] = float(score)
        converted[query_id] = scores
    return converted


def _check_token(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"a {what} in a TREC run file must be non-empty and without spaces, got {value!r}")


def format_run(run: Run, tag: str = DEFAULT_TAG) -> str:
    """The text of a TREC run file for ``run`` (queries in sorted order, hits re-ranked as ``trec_eval`` ranks
    them)."""
    _check_token(tag, "tag")
    lines = []
    for query_id in sorted(run):
        _check_token(query_id, "query id")
        for rank, (doc_id, score) in enumerate(trec_order(run[query_id]), start=1):
            _check_token(doc_id, "document id")
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    return "".join(lines)


def write_run(path: str | Path, run: Run, tag: str = DEFAULT_TAG) -> Path:
    """Save ``run`` as a TREC run file (atomically); see :func:`format_run`."""
    return write_text_atomically(path, format_run(run, tag))


def read_run(path: str | Path) -> dict[str, list[Hit]]:
    """Read a TREC run file into ``{query_id: hits}``, each query's hits in ``trec_eval``'s order.

    Raises :class:`~mpretriever.data.errors.DataFormatError` naming the line of a row without six columns, with
    a non-numeric rank or score, or repeating a document for a query.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    run: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            columns = line.split()
            if len(columns) != 6:
                raise DataFormatError(
                    path, f"expected 6 columns (qid Q0 docid rank score tag), got {len(columns)}", line=number
                )
            query_id, _, doc_id, rank, score, _ = columns
            try:
                int(rank)
                value = float(score)
            except ValueError:
                raise DataFormatError(
                    path, f"rank must be an integer and score a number: {line.strip()!r}", line=number
                ) from None
            hits = run.setdefault(query_id, {})
            if doc_id in hits:
                raise DataFormatError(path, f"document {doc_id!r} appears twice for query {query_id!r}", line=number)
            hits[doc_id] = value
    return {query_id: trec_order(list(hits.items())) for query_id, hits in run.items()}
