"""Writing mined negatives as JSON lines that ``mpr train --negatives`` reads.

One line per mined query: ``{"query_id": ..., "negatives": [doc ids, best first], "scores": [...]}`` (the reader
ignores ``scores``). A query left without negatives gets an empty list, so the file shows every query mined. The
file is written to a temporary sibling and renamed into place: a reader never sees half a file, and an interrupted
run leaves any earlier file intact.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mpretriever.files import OutputExistsError, atomic_file
from mpretriever.mining.base import Candidate

SCORE_DIGITS = 6


@dataclass(frozen=True)
class MinedQuery:
    """The negatives chosen for one query, best first."""

    query_id: str
    negatives: tuple[Candidate, ...]


def is_jsonl_name(path: Path) -> bool:
    """Whether :func:`mpretriever.data.negatives.load_negatives` reads ``path`` as JSON lines (not TSV)."""
    return ".jsonl" in path.name or ".json" in path.suffixes


def check_output(path: Path, overwrite: bool = False) -> None:
    """Refuse an output that ``mpr train`` would not read as JSON lines, or that exists without ``overwrite``."""
    if not is_jsonl_name(path):
        raise ValueError(f"{path}: the negatives file must be named *.jsonl (or *.jsonl.gz) so mpr train reads it")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a file name such as {path / 'negatives.jsonl'}")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it, or choose another --output")


def record(mined: MinedQuery) -> dict[str, object]:
    """The JSON object of one line."""
    return {
        "query_id": mined.query_id,
        "negatives": [c.doc_id for c in mined.negatives],
        "scores": [round(c.score, SCORE_DIGITS) for c in mined.negatives],
    }


def write_negatives(path: str | Path, mined: Iterable[MinedQuery], overwrite: bool = False) -> int:
    """Write ``mined`` to ``path`` atomically (gzip-compressed when the name ends in ``.gz``); return the lines.

    Raises :class:`~mpretriever.files.OutputExistsError` when ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    check_output(path, overwrite)
    lines = 0
    with atomic_file(path, "wb") as raw:
        handle: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" else raw
        try:
            for item in mined:
                handle.write((json.dumps(record(item), ensure_ascii=False) + "\n").encode("utf-8"))
                lines += 1
        finally:
            if handle is not raw:
                handle.close()
    return lines
