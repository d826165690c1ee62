"""Files: output written atomically (to a temporary sibling, renamed into place once complete), the error raised
when a command would replace earlier results, and YAML files read with errors that name the file and line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from mpretriever.data.errors import DataFormatError, not_utf8


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


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling renamed into place (readers never see half a
    file; an interrupted write leaves any earlier file intact)."""
    with atomic_file(path) as handle:
        handle.write(text)
    return Path(path)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a :class:`DataFormatError` (with the line)."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except UnicodeDecodeError as error:
        raise not_utf8(path, error) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or error
        raise DataFormatError(path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
