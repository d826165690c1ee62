"""Errors raised for bad input data, always naming the file (and line, when there is one)."""

from __future__ import annotations

import logging
from pathlib import Path

MAX_REPORTED = 5


class DataFormatError(ValueError):
    """A dataset file is missing, malformed or inconsistent.

    The message starts with ``path:line:`` (or ``path:`` when no single line is at fault), the way compilers
    report errors, so editors and terminals can jump to it.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        location = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{location}: {message}")


def not_utf8(path: str | Path, error: UnicodeDecodeError, first_line: int = 1) -> DataFormatError:
    """The error for bytes of ``path`` that are not UTF-8, at their line; ``error.object`` holds the file's bytes
    from line ``first_line`` on."""
    data = error.object
    line_start = data.rfind(b"\n", 0, error.start) + 1
    return DataFormatError(
        path,
        f"not valid UTF-8 (byte 0x{data[error.start]:02x} at position {error.start - line_start + 1} of the line)",
        line=first_line + data.count(b"\n", 0, error.start),
    )


def warn_skipped(logger: logging.Logger, path: Path, skipped: list[tuple[int, str]], what: str) -> None:
    """One counted warning for rows skipped from ``path``, showing the first few as ``line N: id``."""
    if not skipped:
        return
    shown = ", ".join(f"line {number}: {name}" for number, name in skipped[:MAX_REPORTED])
    more = ", ..." if len(skipped) > MAX_REPORTED else ""
    logger.warning("%s: skipped %d %s (%s%s)", path, len(skipped), what, shown, more)
