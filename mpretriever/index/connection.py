"""Connecting to Qdrant: embedded local mode (a directory, the default) or a server (``url`` + API key)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

DEFAULT_QDRANT_PATH = "qdrant_data"
DEFAULT_API_KEY_ENV = "QDRANT_API_KEY"
DEFAULT_TIMEOUT_S = 10
LOCAL_STORE_MARKER = "meta.json"  # written by qdrant-client when it creates an embedded store


class QdrantUnavailableError(ConnectionError):
    """Qdrant could not be reached or opened."""


@dataclass(frozen=True)
class QdrantSettings:
    """Where the vectors live. ``url`` wins over ``path``; ``path=":memory:"`` keeps everything in RAM."""

    path: str | None = DEFAULT_QDRANT_PATH
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: int = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(
        cls, path: str | None, url: str | None, api_key_env: str = DEFAULT_API_KEY_ENV, timeout: int = DEFAULT_TIMEOUT_S
    ) -> QdrantSettings:
        """Settings whose API key (for ``url``) is read from the environment variable ``api_key_env``."""
        return cls(path=path, url=url, api_key=os.environ.get(api_key_env) or None, timeout=timeout)

    @property
    def location(self) -> str:
        return self.url if self.url else f"local Qdrant at {self.path}"

    @property
    def local_path(self) -> Path | None:
        """The embedded Qdrant's directory; ``None`` for a server or RAM only."""
        if self.url or self.path == ":memory:":
            return None
        return Path(self.path or DEFAULT_QDRANT_PATH)

    def check_exists(self) -> None:
        """Raise :class:`QdrantUnavailableError` when the embedded Qdrant directory does not hold a store, e.g. a
        mistyped ``--qdrant-path``, which opening would silently create empty."""
        path = self.local_path
        if path is not None and not (path / LOCAL_STORE_MARKER).is_file():
            found = "is not an embedded Qdrant directory" if path.exists() else "does not exist"
            raise QdrantUnavailableError(
                f"{path}: {found}; build a collection there with mpr index, or pass --qdrant-url for a server"
            )

    def connect(self, must_exist: bool = False) -> QdrantClient:
        """Open a client and check that it answers; fails within ``timeout`` seconds with a clear message.

        ``must_exist``: for commands that only read, refuse (see :meth:`check_exists`) an embedded Qdrant
        directory that does not exist yet instead of creating it.
        """
        from qdrant_client import QdrantClient  # here, not at the top: the CLI reads this module's defaults

        if must_exist:
            self.check_exists()
        try:
            if self.url:
                client = QdrantClient(url=self.url, api_key=self.api_key, timeout=self.timeout)
            elif (local_path := self.local_path) is None:
                client = QdrantClient(location=":memory:")
            else:
                local_path.mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=str(local_path))
        except RuntimeError as error:  # local mode: the directory is locked by another client
            raise QdrantUnavailableError(f"cannot open {self.location}: {error}") from error
        try:
            client.get_collections()
        except Exception as error:
            client.close()
            raise QdrantUnavailableError(f"cannot reach Qdrant at {self.location}: {error}") from error
        return client
