"""Options shared by several commands: the Qdrant connection."""

from __future__ import annotations

from typing import Annotated

import typer

from mpretriever.index.connection import DEFAULT_API_KEY_ENV, DEFAULT_QDRANT_PATH, DEFAULT_TIMEOUT_S

QDRANT = "Qdrant connection"

QdrantPath = Annotated[
    str,
    typer.Option(help="Directory of the embedded (local) Qdrant; ':memory:' for RAM only.", rich_help_panel=QDRANT),
]
QdrantUrl = Annotated[
    str | None,
    typer.Option(
        help="URL of a Qdrant server (instead of --qdrant-path), e.g. http://localhost:6333.", rich_help_panel=QDRANT
    ),
]
ApiKeyEnv = Annotated[
    str,
    typer.Option(
        help="Environment variable holding the Qdrant API key (used with --qdrant-url).", rich_help_panel=QDRANT
    ),
]
QdrantTimeout = Annotated[int, typer.Option(help="Seconds to wait for Qdrant.", rich_help_panel=QDRANT)]


__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_QDRANT_PATH",
    "DEFAULT_TIMEOUT_S",
    "ApiKeyEnv",
    "QdrantPath",
    "QdrantTimeout",
    "QdrantUrl",
]
