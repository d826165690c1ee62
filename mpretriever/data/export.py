"""Writing a BEIR split in FlagEmbedding's JSON-lines format, so that data moves both ways between mpretriever and
the trainers that read that format (FlagEmbedding, and the many fine-tuning scripts that follow it).

One line per query of the split with at least one positive at ``min_grade`` or above: ``{"query", "pos",
"pos_scores", "neg"}``. Passages are written as the encoder sees them (title and text joined, as
:func:`~mpretriever.data.beir.passage_text` does); ``pos_scores`` are the grades; ``neg`` are the query's mined
negatives (``mpr mine`` output) that are not among its judged passages, in rank order. Reading the file back with
:func:`~mpretriever.data.flagembedding.read_flagembedding` gives the same positives and grades, by text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mpretriever.data.beir import BeirDataset, passage_text
from mpretriever.data.negatives import load_negatives
from mpretriever.files import OutputExistsError, atomic_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportStats:
    """What an export wrote: lines (queries), positives, negatives, and queries left out for want of a positive."""

    queries: int
    positives: int
    negatives: int
    without_positive: int


def export_flagembedding(
    dataset: BeirDataset,
    split: str,
    output: Path,
    negatives: Path | None = None,
    min_grade: int = 1,
    overwrite: bool = False,
) -> ExportStats:
    """Write ``split`` of ``dataset`` to ``output`` (see the module docstring); refused when ``output`` exists,
    unless ``overwrite``."""
    if min_grade < 1:
        raise ValueError(f"min_grade must be at least 1 (a positive), got {min_grade}")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists; pass --overwrite to replace it, or choose another --output")
    qrels = dataset.qrels(split)
    mined = load_negatives(negatives, dataset.queries, dataset.doc_index) if negatives else {}
    corpus, index = dataset.corpus, dataset.doc_index

    def text(doc_id: str) -> str:
        row = corpus[index[doc_id]]
        return passage_text(row["title"], row["text"])

    lines = positives = written_negatives = without = 0
    with atomic_file(output) as handle:
        for query_id, judged in qrels.items():
            relevant = sorted(
                ((doc_id, j.grade) for doc_id, j in judged.items() if j.grade >= min_grade),
                key=lambda item: (-item[1], item[0]),
            )
            if not relevant:
                without += 1
                continue
            chosen = [doc_id for doc_id in mined.get(query_id, []) if doc_id not in judged]
            record = {
                "query": dataset.queries[query_id],
                "pos": [text(doc_id) for doc_id, _ in relevant],
                "pos_scores": [grade for _, grade in relevant],
                "neg": [text(doc_id) for doc_id in chosen],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            lines, positives, written_negatives = lines + 1, positives + len(relevant), written_negatives + len(chosen)
    if without:
        logger.warning("%d queries of split '%s' have no positive at grade %d or above: left out", without, split,
                       min_grade)  # fmt: skip
    return ExportStats(queries=lines, positives=positives, negatives=written_negatives, without_positive=without)
