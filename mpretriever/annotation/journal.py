"""The annotation journal: every judgement appended, as it is made, to a JSON-lines file.

A record is keyed by (query, passage, judge id, prompt hash): a re-run judges only the pairs missing for its own
judge and prompt, and never a pair twice. Each batch is written, flushed and synced before the next is judged, so
``kill -9`` loses at most the batch in flight; the torn last line such a kill can leave is set aside with a warning
when the journal is read again. Any other unreadable line is an error naming the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mpretriever.data.errors import DataFormatError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgementRecord:
    """One judged pair: the grade, the soft score, and what the judge saw (probabilities or its raw reply)."""

    query_id: str
    doc_id: str
    judge: str
    prompt: str
    grade: int | None
    score: float | None = None
    probabilities: list[float] | None = None
    reply: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.query_id, self.doc_id, self.judge, self.prompt)

    def to_json(self) -> str:
        record = {name: value for name, value in asdict(self).items() if value is not None and value != {}}
        return json.dumps(record, ensure_ascii=False, sort_keys=True)


REQUIRED = ("query_id", "doc_id", "judge", "prompt", "grade")


def _record(line: str, path: Path, number: int) -> JudgementRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not a JSON record: {error.msg}", line=number) from None
    missing = [name for name in REQUIRED if name not in data] if isinstance(data, dict) else list(REQUIRED)
    if missing:
        raise DataFormatError(path, f"journal record misses {', '.join(missing)}", line=number)
    known = {name: data[name] for name in JudgementRecord.__dataclass_fields__ if name in data}
    return JudgementRecord(**known)


class Journal:
    """The judgements on disk, and an appender for new ones (use as a context manager)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[tuple[str, str, str, str], JudgementRecord] = {}
        self._handle: Any = None
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        for number, raw in enumerate(complete, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFormatError(self.path, "not valid UTF-8", line=number) from None
            record = _record(text, self.path, number)
            self.records.setdefault(record.key, record)
        if torn.strip():
            # the last line has no newline: a write cut short (kill -9). Its pair is judged again.
            logger.warning("%s:%d: an unfinished last record (an interrupted run) is set aside", self.path, len(lines))
            self._truncate_to = len(data) - len(torn)
        else:
            self._truncate_to = None

    def __contains__(self, key: tuple[str, str, str, str]) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if getattr(self, "_truncate_to", None) is not None:
            with self.path.open("r+b") as handle:
                handle.truncate(self._truncate_to)
            self._truncate_to = None
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def append(self, records: Iterable[JudgementRecord]) -> int:
        """Write ``records`` not yet in the journal and sync them to disk; returns how many were new."""
        if self._handle is None:
            raise RuntimeError("open the journal with 'with journal:' before appending")
        new = [record for record in records if record.key not in self.records]
        if not new:
            return 0
        self._handle.write("".join(record.to_json() + "\n" for record in new))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for record in new:
            self.records[record.key] = record
        return len(new)

    def of(self, judge: str, prompt: str) -> dict[tuple[str, str], JudgementRecord]:
        """The judgements made by ``judge`` with ``prompt``, by (query, passage)."""
        return {
            (record.query_id, record.doc_id): record
            for record in self.records.values()
            if record.judge == judge and record.prompt == prompt
        }
