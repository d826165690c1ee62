"""``mpr search``: ranked passages for a query, from a Qdrant collection."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from mpretriever.cli.options import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_QDRANT_PATH,
    DEFAULT_TIMEOUT_S,
    ApiKeyEnv,
    BackendOption,
    EncoderBackend,
    QdrantPath,
    QdrantTimeout,
    QdrantUrl,
    QueryMaxLength,
)


def search_command(
    query: str = typer.Argument(..., help="The query text."),
    collection: str = typer.Option(..., help="Collection to search."),
    model: str | None = typer.Option(None, help="Encoder; default: the model the collection was indexed with."),
    top_k: int = typer.Option(10, min=1, max=1000, help="Number of passages to show."),
    excerpt: int = typer.Option(160, min=0, help="Characters of each passage to show."),
    backend: BackendOption = EncoderBackend.torch,
    query_max_length: QueryMaxLength = None,
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Print the passages of a collection that best match a query: rank, id, score, title and an excerpt.

    Example: mpr search "vitamin D and breast cancer" --collection nfcorpus
    """
    from haystack.utils import Secret

    from mpretriever.haystack.retriever import MPRetriever
    from mpretriever.index.connection import QdrantSettings

    retriever = MPRetriever(
        collection=collection,
        model=model,
        qdrant_path=qdrant_path,
        qdrant_url=qdrant_url,
        api_key=Secret.from_env_var(api_key_env, strict=False),
        top_k=top_k,
        backend=backend.value,
        timeout=timeout,
        query_max_length=query_max_length,
    )
    try:
        documents = retriever.run(query=query)["documents"]
    finally:
        retriever.close()
    location = QdrantSettings(path=qdrant_path, url=qdrant_url).location
    table = Table(title=f"{query!r} in '{collection}' ({location})", show_lines=False)
    for column in ("rank", "id", "score", "title", "text"):
        table.add_column(column, overflow="fold")
    for rank, document in enumerate(documents, start=1):
        text = (document.content or "").replace("\n", " ")
        table.add_row(
            str(rank),
            str(document.id),
            f"{document.score:.4f}",
            str(document.meta.get("title", "")),
            text[:excerpt] + ("..." if len(text) > excerpt else ""),
        )
    Console().print(table)
