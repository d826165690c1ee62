"""Training data in FlagEmbedding's JSON-lines format, read into the objects mpretriever trains from.

One line per query: ``{"query": str, "pos": [str, ...], "neg": [str, ...]}``, optionally with ``pos_scores`` and
``neg_scores`` (one number per passage: grades, or a teacher's scores) and ``prompt`` (an instruction for the
query). This is the layout of FlagEmbedding's fine-tuning data, which most embedding fine-tuning sets on the Hugging
Face hub follow.

Passages have no ids in this format, so a passage's id is a digest of its text: a passage that is a positive of
two queries, or a negative of one and a positive of another, is one corpus row, and gets the same positive and
ignore masks as a BEIR corpus row does. Queries are identified the same way; a query text on several lines stays
several queries (``<digest>-2``, ``-3``...), one per line, as the file has them, and a warning counts them.

- ``pos_scores`` that are all whole numbers of at least 1 are the positives' grades (what ``--min-grade``
  filters); other scores (a teacher's, or fractional) leave every positive at grade 1 and are kept in
  :attr:`FlagEmbeddingData.scores`, as ``neg_scores`` are, for objectives that use them.
- A negative that is also a positive of its query is left out of its negatives (and counted).
- A line without a positive is skipped and counted; every other problem is a :class:`DataFormatError` at its line.

:func:`beir_directory` writes what a file holds as a BEIR dataset (corpus, queries, the ``train`` qrels, and the
negatives in ``mpr mine``'s format) into the cache, once per content of the file, so that ``--data FILE.jsonl``
works wherever a BEIR dataset does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpretriever.cache import cache_dir
from mpretriever.data.beir import Judgement, Qrels
from mpretriever.data.errors import DataFormatError, warn_skipped
from mpretriever.data.text_files import numbered_records

logger = logging.getLogger(__name__)

ID_CHARS = 16
SUFFIXES = (".jsonl", ".jsonl.gz")
SPLIT = "train"
NEGATIVES_FILE = "negatives.jsonl"
SCORES_FILE = "scores.json"
SOURCE_FILE = "source.json"
SOURCE = "human"  # the labels of a training file are the user's, as a BEIR split's are


def text_id(text: str, prefix: str) -> str:
    """A stable id of a text: ``prefix`` and the first hex digits of its SHA-256."""
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_CHARS]


def passage_id(text: str) -> str:
    return text_id(text, "p")


@dataclass
class FlagEmbeddingData:
    """A FlagEmbedding file as mpretriever's data layer sees a BEIR dataset: a corpus of every passage named
    anywhere in the file, the queries, the positives as graded qrels, and each query's negatives."""

    path: Path
    corpus: dict[str, str] = field(default_factory=dict)  # passage id -> text
    queries: dict[str, str] = field(default_factory=dict)  # query id -> text
    qrels: Qrels = field(default_factory=dict)
    negatives: dict[str, list[str]] = field(default_factory=dict)  # query id -> passage ids, in the file's order
    prompts: dict[str, str] = field(default_factory=dict)  # query id -> its prompt, where the line gives one
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # query id -> passage id -> score
    lines: dict[str, int] = field(default_factory=dict)  # query id -> its line, for messages
    skipped_without_positive: int = 0
    negatives_that_are_positives: int = 0
    repeated_queries: int = 0


def _strings(path: Path, number: int, record: dict[str, Any], key: str, required: bool) -> list[str]:
    value = record.get(key)
    if value is None:
        if required:
            raise DataFormatError(path, f'no \'{key}\': each line needs "query" and "pos" (a list of texts)', number)
        return []
    if isinstance(value, str):
        raise DataFormatError(path, f"'{key}' must be a list of texts, not one text", number)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataFormatError(path, f"'{key}' must be a list of texts", number)
    empty = [index for index, item in enumerate(value) if not item.strip()]
    if empty:
        raise DataFormatError(path, f"'{key}' item {empty[0]} is empty", number)
    return value


def _scores(path: Path, number: int, record: dict[str, Any], key: str, length: int) -> list[float] | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, int | float) and not isinstance(item, bool) for item in value
    ):
        raise DataFormatError(path, f"'{key}' must be a list of numbers", number)
    if len(value) != length:
        passages = key.removesuffix("_scores")
        raise DataFormatError(path, f"'{key}' has {len(value)} numbers for {length} '{passages}' texts", number)
    if not all(math.isfinite(item) for item in value):
        raise DataFormatError(path, f"'{key}' holds a number that is not finite", number)
    return [float(item) for item in value]


def _grades(scores: list[float] | None) -> list[int] | None:
    """The positives' grades when ``scores`` are whole numbers of at least 1; else ``None`` (grade 1 each)."""
    if scores is None or not all(score.is_integer() and score >= 1 for score in scores):
        return None
    return [int(score) for score in scores]


def read_flagembedding(path: str | Path) -> FlagEmbeddingData:
    """Read a FlagEmbedding JSON-lines file (``.jsonl`` or ``.jsonl.gz``); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    return read_records(path, numbered_records(path))


def read_records(path: Path, records: Iterable[tuple[int, dict[str, Any]]]) -> FlagEmbeddingData:
    """Read numbered records in FlagEmbedding's layout; errors name ``path`` and the record's number (a file's
    line, a dataset's row)."""
    data = FlagEmbeddingData(path=path)
    seen: Counter[str] = Counter()
    without_positive: list[tuple[int, str]] = []
    for number, record in records:
        query = record.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DataFormatError(path, "'query' must be a non-empty text", number)
        positives = _strings(path, number, record, "pos", required=True)
        negatives = _strings(path, number, record, "neg", required=False)
        pos_scores = _scores(path, number, record, "pos_scores", len(positives))
        neg_scores = _scores(path, number, record, "neg_scores", len(negatives))
        prompt = record.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise DataFormatError(path, "'prompt' must be a text", number)
        base = text_id(query, "q")
        seen[base] += 1
        query_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        if not positives:
            without_positive.append((number, query[:40]))
            continue
        data.queries[query_id] = query
        data.lines[query_id] = number
        if prompt:
            data.prompts[query_id] = prompt
        given_grades = _grades(pos_scores)
        grades = given_grades or [1] * len(positives)
        judged = data.qrels.setdefault(query_id, {})
        for text, grade in zip(positives, grades, strict=True):
            doc_id = passage_id(text)
            data.corpus[doc_id] = text
            previous = judged.get(doc_id)
            judged[doc_id] = Judgement(doc_id, max(grade, previous.grade if previous else grade), SOURCE)
        kept: list[str] = []
        for text in negatives:
            doc_id = passage_id(text)
            data.corpus[doc_id] = text
            if doc_id in judged:
                data.negatives_that_are_positives += 1
            elif doc_id not in kept:
                kept.append(doc_id)
        data.negatives[query_id] = kept
        scored = {}
        if pos_scores is not None and given_grades is None:
            scored.update({passage_id(text): score for text, score in zip(positives, pos_scores, strict=True)})
        if neg_scores is not None:
            scored.update({passage_id(text): score for text, score in zip(negatives, neg_scores, strict=True)})
        if scored:
            data.scores[query_id] = scored
    data.skipped_without_positive = len(without_positive)
    data.repeated_queries = sum(count - 1 for count in seen.values())
    warn_skipped(logger, path, without_positive, "lines without a positive")
    if data.repeated_queries:
        logger.warning(
            "%s: %d lines repeat the query of an earlier line; each line is kept as a query of its own",
            path,
            data.repeated_queries,
        )
    if data.negatives_that_are_positives:
        logger.warning(
            "%s: %d negatives are also positives of their query and were left out of its negatives",
            path,
            data.negatives_that_are_positives,
        )
    if not data.queries:
        raise DataFormatError(path, "no line has a positive passage: nothing to train on")
    return data


def is_flagembedding_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIXES)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def beir_directory(path: str | Path, cache: Path | None = None) -> Path:
    """The BEIR-layout directory of a FlagEmbedding file: ``corpus.jsonl``, ``queries.jsonl``,
    ``qrels/train.tsv`` (the positives and their grades), ``negatives.jsonl`` (each query's negatives, for
    ``mpr train --negatives``, which uses it by default), ``scores.json`` (teacher scores, if any) and
    ``source.json`` (the file and what was skipped). Built once per content of the file (a digest names the
    directory), atomically; ``cache`` defaults to ``$MPR_CACHE_DIR/datasets/flagembedding``."""
    path = Path(path)
    name = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return converted_directory(f"{name}-{_digest(path)}", lambda: read_flagembedding(path), str(path.resolve()), cache)


def converted_directory(
    name: str, read: Callable[[], FlagEmbeddingData], source_name: str, cache: Path | None = None
) -> Path:
    """The cached BEIR directory ``name`` (see :func:`beir_directory`), written from ``read()`` if not there."""
    root = cache or cache_dir("datasets", "flagembedding")
    directory = root / name
    if (directory / SOURCE_FILE).is_file():
        return directory
    data = read()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{directory.name}."))
    try:
        _write_jsonl(staging / "corpus.jsonl", [{"_id": d, "title": "", "text": t} for d, t in data.corpus.items()])
        _write_jsonl(staging / "queries.jsonl", [{"_id": q, "text": t} for q, t in data.queries.items()])
        (staging / "qrels").mkdir()
        rows = [f"{q}\t{d}\t{j.grade}" for q, judged in data.qrels.items() for d, j in judged.items()]
        (staging / "qrels" / f"{SPLIT}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
        negatives = [{"query_id": q, "negatives": n} for q, n in data.negatives.items() if n]
        _write_jsonl(staging / NEGATIVES_FILE, negatives)
        if data.scores:
            (staging / SCORES_FILE).write_text(json.dumps(data.scores, indent=1, sort_keys=True) + "\n")
        source = {
            "source": source_name,
            "format": "flagembedding",
            "queries": len(data.queries),
            "passages": len(data.corpus),
            "skipped_without_positive": data.skipped_without_positive,
            "repeated_queries": data.repeated_queries,
            "negatives_that_are_positives": data.negatives_that_are_positives,
            "prompts": len(data.prompts),
        }
        (staging / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        try:
            os.replace(staging, directory)
        except OSError:  # another process built it meanwhile: the same content
            if not (directory / SOURCE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if data.prompts:
        logger.warning("%s: %d queries carry a prompt, which training does not use yet", source_name, len(data.prompts))
    return directory


def default_negatives(directory: Path) -> Path | None:
    """The negatives file of a dataset converted from a FlagEmbedding file, if it has any."""
    negatives = directory / NEGATIVES_FILE
    converted = (directory / SOURCE_FILE).is_file()
    return negatives if converted and negatives.is_file() and negatives.stat().st_size > 0 else None
