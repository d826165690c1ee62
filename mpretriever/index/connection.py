"""Connecting to Qdrant: embedded local mode (a directory, the default) or a server (``url`` + API key)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qdrant_client import QdrantClient

DEFAULT_QDRANT_PATH = "qdrant_data"
DEFAULT_API_KEY_ENV = "QDRANT_API_KEY"
DEFAULT_TIMEOUT_S = 10


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

    def connect(self) -> QdrantClient:
        """Open a client and check that it answers; fails within ``timeout`` seconds with a clear message."""
        try:
            if self.url:
                client = QdrantClient(url=self.url, api_key=self.api_key, timeout=self.timeout)
            elif self.path == ":memory:":
                client = QdrantClient(location=":memory:")
            else:
                Path(self.path or DEFAULT_QDRANT_PATH).mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=self.path)
        except RuntimeError as error:  # local mode: the directory is locked by another client
            raise QdrantUnavailableError(f"cannot open {self.location}: {error}") from error
        try:
            client.get_collections()
        except Exception as error:
            client.close()
            raise QdrantUnavailableError(f"cannot reach Qdrant at {self.location}: {error}") from error
        return client
