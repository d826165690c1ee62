"""Errors raised for bad input data, always naming the file (and line, when there is one)."""

from __future__ import annotations

from pathlib import Path


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
