"""Loading datasets in the BEIR layout: ``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]``, ``qrels/<split>.tsv[.gz]``.

The corpus and the queries go through Hugging Face ``datasets`` (Arrow-backed, memory-mapped, cached), the qrels
through a line reader. Every problem is a :class:`DataFormatError` naming the file and, where one line is at
fault, the line: malformed JSON, a byte that is not UTF-8, a truncated ``.gz``, a record without an ``_id``, an
``_id`` given twice (both lines), an empty file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mpretriever.data.errors import MAX_REPORTED, DataFormatError, warn_skipped
from mpretriever.data.text_files import find_existing, numbered_lines, numbered_records

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
QRELS_SUFFIXES = (".tsv", ".tsv.gz")
DEFAULT_SOURCE = "human"


@dataclass(frozen=True)
class Judgement:
    """One qrels row: a graded relevance label of a document for a query, and who gave it."""

    doc_id: str
    grade: int
    source: str = DEFAULT_SOURCE


Qrels = dict[str, dict[str, Judgement]]


def _unreadable(path: Path, error: Exception) -> DataFormatError:
    """What is wrong with a JSON-lines file ``datasets`` could not read: the first bad line (the scan itself
    raises for bytes that are not UTF-8 and for a truncated gzip file), else an empty file, else ``error``."""
    try:
        records = sum(1 for _ in numbered_records(path))
    except DataFormatError as bad_line:
        return bad_line
    if not records:
        return DataFormatError(path, "no records: the file is empty")
    return DataFormatError(path, f"could not be read as JSON lines: {str(error) or type(error).__name__}")


@contextmanager
def _datasets_errors_unlogged() -> Iterator[None]:
    """``datasets`` logs a failed parse as an error before raising it; the :class:`DataFormatError` raised in its
    place says the same with the line, so that log would only be noise."""
    datasets_logger = logging.getLogger("datasets")
    level = datasets_logger.level
    datasets_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        datasets_logger.setLevel(level)


def load_jsonl(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> datasets.Dataset:
    """Load a JSON-lines file through ``datasets`` and keep the ``required`` and ``optional`` string columns.

    Raises :class:`DataFormatError` naming the file and line of the first malformed record (invalid JSON, not
    UTF-8, cut short by a truncated gzip file), or the missing field, or saying that the file is empty. Missing
    optional columns are added as empty strings; ``None`` values become empty strings.
    """
    import datasets  # here, not at the top: it takes seconds, and the CLI's start-up reads this package

    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        with _datasets_errors_unlogged():
            dataset = datasets.load_dataset("json", data_files=str(path), split="train")
            if len(dataset) == 0:
                raise DataFormatError(path, "no records: the file is empty")
            return _string_columns(dataset, path, required, optional)
    except DataFormatError:
        raise
    except Exception as error:  # pyarrow's parse errors come without a line; bad UTF-8 surfaces only when decoded
        raise _unreadable(path, error) from error


def _string_columns(
    dataset: datasets.Dataset, path: Path, required: tuple[str, ...], optional: tuple[str, ...]
) -> datasets.Dataset:
    import datasets

    missing = [field for field in required if field not in dataset.column_names]
    if missing:
        raise DataFormatError(path, f"records lack the required field(s) {missing}; found {dataset.column_names}")
    dataset = dataset.select_columns([c for c in (*required, *optional) if c in dataset.column_names])
    for field in optional:
        if field not in dataset.column_names:
            dataset = dataset.add_column(field, [""] * len(dataset))
    for field in dataset.column_names:
        if dataset.features[field] != datasets.Value("string"):
            dataset = dataset.cast_column(field, datasets.Value("string"))
    return dataset.map(
        _empty_strings_for_nulls,
        batched=True,
        desc=f"Reading {path.name}",
        new_fingerprint=f"{dataset._fingerprint}-nulls-to-empty",
    )


def _empty_strings_for_nulls(batch: dict[str, list[str | None]]) -> dict[str, list[str]]:
    return {field: ["" if value is None else value for value in values] for field, values in batch.items()}


def _drop_empty(dataset: datasets.Dataset, path: Path, text_fields: tuple[str, ...], what: str) -> datasets.Dataset:
    empty = [
        index
        for index, texts in enumerate(zip(*(dataset[field] for field in text_fields), strict=True))
        if not any(text.strip() for text in texts)
    ]
    if not empty:
        return dataset
    examples = ", ".join(dataset[index]["_id"] for index in empty[:MAX_REPORTED])
    logger.warning(
        "%s: skipped %d %s with empty text (ids: %s%s)",
        path,
        len(empty),
        what,
        examples,
        ", ..." if len(empty) > MAX_REPORTED else "",
    )
    empty_rows = set(empty)
    return dataset.select([row for row in range(len(dataset)) if row not in empty_rows])


def _record_lines(path: Path) -> list[int]:
    """The line number of each record (row) of a JSON-lines file: blank lines hold none."""
    return [number for number, line in numbered_lines(path) if line.strip()]


def _check_ids(ids: list[str], path: Path) -> None:
    """Every record has an ``_id``, and no two the same: else a :class:`DataFormatError` at the line (a second
    record would silently replace the first in an index, or be dropped from it)."""
    first_row: dict[str, int] = {}
    for row, record_id in enumerate(ids):
        if not record_id.strip():
            raise DataFormatError(path, "record without an '_id' (missing or empty)", line=_record_lines(path)[row])
        earlier = first_row.setdefault(record_id, row)
        if earlier != row:
            lines = _record_lines(path)
            message = f"duplicate _id {record_id!r} (first at line {lines[earlier]}): ids must be unique"
            raise DataFormatError(path, message, line=lines[row])


def grades(qrels: Qrels) -> dict[str, dict[str, int]]:
    """The grade of every judged pair, without the source: what trec_eval and the dev set score against."""
    return {query_id: {doc_id: j.grade for doc_id, j in judged.items()} for query_id, judged in qrels.items()}


def passage_text(title: str, text: str) -> str:
    """The text a passage is embedded as: its title and body joined by a space (the BEIR convention)."""
    title, text = title.strip(), text.strip()
    return f"{title} {text}" if title and text else title or text


def passage_texts(rows: Mapping[str, Sequence[str]]) -> list[str]:
    """:func:`passage_text` of every row of a corpus slice (columns ``title`` and ``text``, e.g. ``corpus[a:b]``)."""
    return [passage_text(title, text) for title, text in zip(rows["title"], rows["text"], strict=True)]


class BeirDataset:
    """A dataset directory in the BEIR layout. Files are read lazily, once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataFormatError(self.root, "dataset directory not found")
        corpus = find_existing(self.root, "corpus", JSONL_SUFFIXES)
        if corpus is None:
            raise DataFormatError(
                self.root, "not a BEIR dataset: expected corpus.jsonl[.gz], queries.jsonl[.gz] and qrels/<split>.tsv"
            )
        self.corpus_path = corpus

    @cached_property
    def queries_path(self) -> Path:
        """``queries.jsonl[.gz]``, looked for only when needed: indexing a corpus reads no queries."""
        path = find_existing(self.root, "queries", JSONL_SUFFIXES)
        if path is None:
            raise DataFormatError(self.root / "queries.jsonl", "file not found (nor queries.jsonl.gz)")
        return path

    @property
    def name(self) -> str:
        return self.root.name

    @cached_property
    def corpus(self) -> datasets.Dataset:
        """Columns ``_id``, ``title`` and ``text``; documents with neither title nor text are skipped (with a
        warning), a corpus left without any is an error."""
        corpus = load_jsonl(self.corpus_path, required=("_id", "text"), optional=("title",))
        _check_ids(corpus["_id"], self.corpus_path)
        corpus = _drop_empty(corpus, self.corpus_path, ("title", "text"), "documents")
        if len(corpus) == 0:
            raise DataFormatError(self.corpus_path, "no document has a title or text")
        return corpus

    @cached_property
    def doc_index(self) -> dict[str, int]:
        """Corpus row of every document id."""
        return {doc_id: row for row, doc_id in enumerate(self.corpus["_id"])}

    @cached_property
    def queries(self) -> dict[str, str]:
        """Query text by query id; queries with empty text are skipped (with a warning), none left is an error."""
        queries = load_jsonl(self.queries_path, required=("_id", "text"))
        _check_ids(queries["_id"], self.queries_path)
        queries = _drop_empty(queries, self.queries_path, ("text",), "queries")
        if len(queries) == 0:
            raise DataFormatError(self.queries_path, "no query has text")
        return {query_id: text.strip() for query_id, text in zip(queries["_id"], queries["text"], strict=True)}

    def available_splits(self) -> list[str]:
        qrels_dir = self.root / "qrels"
        if not qrels_dir.is_dir():
            return []
        names = {path.name.removesuffix(".gz").removesuffix(".tsv") for path in qrels_dir.glob("*.tsv*")}
        return sorted(names)

    def qrels_path(self, split: str) -> Path:
        path = find_existing(self.root / "qrels", split, QRELS_SUFFIXES)
        if path is None:
            available = ", ".join(self.available_splits()) or "none"
            raise DataFormatError(
                self.root / "qrels" / f"{split}.tsv", f"split '{split}' not found (available splits: {available})"
            )
        return path

    def qrels(self, split: str, source: str = DEFAULT_SOURCE) -> Qrels:
        """The judgements of ``split``, checked against the corpus and the queries."""
        return load_qrels(self.qrels_path(split), set(self.queries), self.doc_index, default_source=source)


def _parse_grade(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def load_qrels(
    path: Path,
    known_queries: set[str] | dict[str, object],
    known_docs: set[str] | dict[str, object],
    default_source: str = DEFAULT_SOURCE,
) -> Qrels:
    """Read a qrels file: ``query-id<TAB>corpus-id<TAB>score[<TAB>source]`` with an optional header line.

    Rows naming unknown queries or documents are skipped with one counted warning each. A row with the wrong
    number of columns or a non-integer score, and a second row for the same pair (one would silently replace
    the other), are errors naming the file and line.
    """
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    qrels: Qrels = {}
    unknown_queries: list[tuple[int, str]] = []
    unknown_docs: list[tuple[int, str]] = []
    pair_lines: dict[tuple[str, str], int] = {}
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        columns = line.split("\t")
        if number == 1 and columns[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(columns) not in (3, 4):
            raise DataFormatError(
                path,
                f"expected 3 or 4 tab-separated columns (query-id, corpus-id, score[, source]), got {len(columns)}",
                line=number,
            )
        query_id, doc_id, score = (column.strip() for column in columns[:3])
        grade = _parse_grade(score)
        if grade is None:
            raise DataFormatError(path, f"score must be an integer grade, got {score!r}", line=number)
        source = columns[3].strip() if len(columns) == 4 and columns[3].strip() else default_source
        first = pair_lines.setdefault((query_id, doc_id), number)
        if first != number:
            raise DataFormatError(
                path,
                f"query {query_id!r} and document {doc_id!r} are judged again (first at line {first}): a file holds "
                "one judgement per pair; another source's judgements go in a file of their own (--extra-qrels)",
                line=number,
            )
        if query_id not in known_queries:
            unknown_queries.append((number, query_id))
            continue
        if doc_id not in known_docs:
            unknown_docs.append((number, doc_id))
            continue
        qrels.setdefault(query_id, {})[doc_id] = Judgement(doc_id=doc_id, grade=grade, source=source)
    warn_skipped(logger, path, unknown_queries, "row(s) naming unknown queries")
    warn_skipped(logger, path, unknown_docs, "row(s) naming unknown documents")
    if not qrels:
        raise DataFormatError(path, "no usable judgements (every row was skipped or the file is empty)")
    return qrels
