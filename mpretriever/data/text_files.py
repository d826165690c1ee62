"""Small helpers for reading plain or gzip-compressed text files with line numbers.

Every reading problem (a byte that is not UTF-8, a truncated or corrupt ``.gz``) is a
:class:`~mpretriever.data.errors.DataFormatError` naming the file and line, never a bare ``UnicodeDecodeError`` or
``EOFError`` (which the command line would report as a bare "Aborted.").
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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


def find_existing(directory: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """Return ``directory/stem+suffix`` for the first suffix that exists, or ``None``."""
    for suffix in suffixes:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
