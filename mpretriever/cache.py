"""Where mpretriever keeps downloaded and derived files: ``$MPR_CACHE_DIR`` (default ``~/.cache/mpretriever``)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "MPR_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """A sub-directory of the cache, e.g. ``cache_dir("datasets")``; not created here."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "mpretriever")).joinpath(*parts)
