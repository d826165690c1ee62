"""``mpr collections``: list the collections and aliases of a Qdrant, roll an alias back, prune old versions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from mpretriever.cli.options import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_QDRANT_PATH,
    DEFAULT_TIMEOUT_S,
    ApiKeyEnv,
    QdrantPath,
    QdrantTimeout,
    QdrantUrl,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

collections_app = typer.Typer(
    help="Versioned collections behind aliases (mpr index --alias NAME): list them, roll an alias back to the "
    "collection it served before, delete old versions.",
    no_args_is_help=True,
)


@contextmanager
def _connected(qdrant_path: str, qdrant_url: str | None, api_key_env: str, timeout: int) -> Iterator[QdrantClient]:
    """A client of the Qdrant the options name (an embedded directory must exist), closed afterwards."""
    from mpretriever.index.connection import QdrantSettings

    settings = QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout)
    client = settings.connect(must_exist=True)
    try:
        yield client
    finally:
        client.close()


@collections_app.command("list")
def list_command(
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Every collection: the aliases serving it, the alias it was built for, its model, points, creation time and
    server layout (when not Qdrant's default)."""
    from mpretriever.index.versions import describe

    with _connected(qdrant_path, qdrant_url, api_key_env, timeout) as client:
        described = describe(client)
    table = Table("collection", "served by", "built for", "points", "model", "fingerprint", "created", "layout")
    for info in described:
        table.add_row(
            info.name,
            ", ".join(info.served_by) or "-",
            info.alias or "-",
            str(info.points),
            info.model or "-",
            (info.fingerprint or "-")[:12],
            info.created_at or "-",
            info.layout or "-",
        )
    Console().print(table)


@collections_app.command("rollback", no_args_is_help=True)
def rollback_command(
    alias: str = typer.Argument(..., help="The alias to point back at the collection it served before."),
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Point ALIAS back at the collection it served before the current one, in one atomic switch; a second
    rollback goes one further back."""
    from mpretriever.index.versions import rollback

    with _connected(qdrant_path, qdrant_url, api_key_env, timeout) as client:
        served, previous = rollback(client, alias)
    Console(stderr=True).print(f"alias '{alias}' now serves '{previous}' (it served '{served}')", highlight=False)


@collections_app.command("prune", no_args_is_help=True)
def prune_command(
    alias: str = typer.Argument(..., help="The alias whose old versions to delete."),
    keep: int = typer.Option(2, min=1, help="Versions to keep, newest first; the served one is always kept."),
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Delete the oldest collections built for ALIAS so that --keep remain (2: the served one and the one a
    rollback returns to, as a rule)."""
    from mpretriever.index.versions import prune

    with _connected(qdrant_path, qdrant_url, api_key_env, timeout) as client:
        deleted = prune(client, alias, keep)
    Console(stderr=True).print(
        f"deleted {len(deleted)} collections of '{alias}'" + (f": {', '.join(deleted)}" if deleted else ""),
        highlight=False,
    )


@collections_app.command("delete", no_args_is_help=True)
def delete_command(
    collection: str = typer.Argument(..., help="A collection that no alias serves."),
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Delete COLLECTION; refused while an alias points at it."""
    from mpretriever.index.versions import delete

    with _connected(qdrant_path, qdrant_url, api_key_env, timeout) as client:
        delete(client, collection)
    Console(stderr=True).print(f"deleted collection '{collection}'", highlight=False)
