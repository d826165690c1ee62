"""Small helpers for reading plain or gzip-compressed text files with line numbers."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def open_text(path: Path) -> TextIO:
    """Open ``path`` for reading as UTF-8 text, transparently decompressing ``.gz`` files."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs, 1-based, without the trailing newline."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n")


def find_existing(directory: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """Return ``directory/stem+suffix`` for the first suffix that exists, or ``None``."""
    for suffix in suffixes:
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
