"""Small helpers for reading plain or gzip-compressed text files with line numbers.

Every reading problem (a byte that is not UTF-8, a truncated or corrupt ``.gz``) is a
:class:`~mpretriever.data.errors.DataFormatError` naming the file and line, never a bare ``UnicodeDecodeError`` or
``EOFError`` (which the command line would report as a bare "Aborted.").
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from mpretriever.data.errors import DataFormatError, not_utf8

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # type: ignore[return-value]


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs, 1-based, without the trailing newline.

    Raises :class:`DataFormatError` with the line for a byte sequence that is not UTF-8 and for a truncated or
    corrupt gzip file.
    """
    number = 0
    try:
        with _open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise not_utf8(path, error, first_line=number) from None
                yield number, line.rstrip("\r\n")
    except GZIP_ERRORS as error:  # at the first line it could not read
        raise DataFormatError(path, f"truncated or corrupt gzip file ({error})", line=number + 1) from None


def json_object(path: Path, number: int, line: str) -> dict[str, Any]:
    """The JSON object on line ``number`` of ``path``; invalid JSON or another JSON value is a
    :class:`DataFormatError` at that line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON: {error.msg} (column {error.colno})", line=number) from None
    if not isinstance(record, dict):
        raise DataFormatError(path, f"expected a JSON object, got {type(record).__name__}", line=number)
    return record


def numbered_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for every non-blank line of a JSON-lines file (see :func:`json_object`)."""
    for number, line in numbered_lines(path):
        if line.strip():
            yield number, json_object(path, number, line)


def find_existing(directory: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """Return ``directory/stem+suffix`` for the first suffix that exists, or ``None``."""
    for suffix in suffixes:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
