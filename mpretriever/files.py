"""Output files: writing them atomically (to a temporary sibling, renamed into place once complete), and the error
raised when a command would replace earlier results."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class OutputExistsError(FileExistsError):
    """The output (a run directory, a results directory, a file) already holds earlier results, and neither
    resuming nor overwriting was asked for."""


def _default_mode() -> int:
    """The permissions a plain ``open()`` would give a new file (0o666 minus the umask); mkstemp gives 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle on a temporary sibling of ``path`` that replaces ``path`` when the block ends without error.

    Readers never see half a file, an interrupted write leaves any earlier file intact, and concurrent writers
    of the same content do not clash (the last rename wins). ``mode`` is ``"w"`` (UTF-8 text) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
        os.chmod(temporary, _default_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
