"""Hard-negative files: JSON lines ``{"query_id": ..., "negatives": [doc ids]}`` or TSV ``query-id<TAB>doc-id``."""

from __future__ import annotations

import logging
from collections.abc import Container
from pathlib import Path

from mpretriever.data.errors import DataFormatError, warn_skipped
from mpretriever.data.text_files import json_object, numbered_lines

logger = logging.getLogger(__name__)


def _parse_jsonl_line(path: Path, number: int, line: str) -> tuple[str, list[str]]:
    record = json_object(path, number, line)
    if "query_id" not in record or not isinstance(record.get("negatives"), list):
        raise DataFormatError(path, 'expected {"query_id": ..., "negatives": [...]}', line=number)
    return str(record["query_id"]), [str(doc_id) for doc_id in record["negatives"]]


def load_negatives(path: Path, known_queries: Container[str], known_docs: Container[str]) -> dict[str, list[str]]:
    """Read hard negatives in rank order; unknown queries and documents are skipped with a counted warning."""
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    is_jsonl = ".jsonl" in path.name or ".json" in path.suffixes
    negatives: dict[str, list[str]] = {}
    unknown: list[tuple[int, str]] = []
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        if is_jsonl:
            query_id, doc_ids = _parse_jsonl_line(path, number, line)
        else:
            columns = line.split("\t")
            if number == 1 and columns[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue
            if len(columns) < 2:
                raise DataFormatError(path, "expected query-id<TAB>doc-id", line=number)
            query_id, doc_ids = columns[0].strip(), [columns[1].strip()]
        if query_id not in known_queries:
            unknown.append((number, query_id))
            continue
        for doc_id in doc_ids:
            if doc_id in known_docs:
                negatives.setdefault(query_id, []).append(doc_id)
            else:
                unknown.append((number, doc_id))
    warn_skipped(logger, path, unknown, "unknown query or document id(s)")
    return negatives
