"""Versioned collections behind an alias: re-index aside, check, switch in one atomic alias operation.

``mpr index --alias NAME`` never writes into the collection that ``NAME`` serves unless the same model (and
backend, passage length, similarity, prefix) filled it, in which case writing only adds or re-embeds points, as
any incremental update does. Otherwise it fills a *version* ``NAME-<fingerprint>`` aside (resumed after an
interruption, since the name derives from the model), checks that it holds every passage of the corpus with its
current title and text, and only then points ``NAME`` at it. Qdrant applies the alias operations of one request
atomically, so a reader of ``NAME`` sees the old collection or the new one, never neither. The collection that was
served before stays, for :func:`rollback`; :func:`prune` deletes old versions.

A version records in its manifest the alias it was built for, when it was created and, once served, which
collection the alias pointed at before (``previous``): rolling back follows that chain.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qdrant_client import QdrantClient, models

from mpretriever.index.collection import METADATA_KEY, read_manifest
from mpretriever.index.layout import LAYOUT_FIELD, layout_differs, recorded_layout

ALIAS_FIELD = "alias"
CREATED_FIELD = "created_at"
PREVIOUS_FIELD = "previous"
SERVED_FIELD = "served_at"
FINGERPRINT_CHARS = 12
# What makes a version's vectors interchangeable with another model's: the same model, encoded the same way.
SAME_VECTORS = ("fingerprint", "backend", "passage_max_length", "similarity", "passage_prefix")


class AliasError(ValueError):
    """An alias operation that cannot be done (no such alias, nothing to roll back to, a name in use)."""


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as ``mpr collections list`` shows it."""

    name: str
    points: int
    model: str | None
    fingerprint: str | None
    created_at: str | None
    alias: str | None  # the alias it was built for
    served_by: tuple[str, ...]  # the aliases that point at it now
    layout: str | None = None  # the server layout it was created with, when not Qdrant's default


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders versions made within a second


def aliases(client: QdrantClient) -> dict[str, str]:
    """Every alias and the collection it points at."""
    return {alias.alias_name: alias.collection_name for alias in client.get_aliases().aliases}


def alias_target(client: QdrantClient, alias: str) -> str | None:
    """The collection ``alias`` points at, or ``None`` when there is no such alias."""
    return aliases(client).get(alias)


def real_collections(client: QdrantClient) -> list[str]:
    return sorted(collection.name for collection in client.get_collections().collections)


def same_vectors(stored: Mapping[str, Any] | None, manifest: Mapping[str, Any]) -> bool:
    """Whether a collection whose manifest is ``stored`` holds the vectors ``manifest``'s model would write, in
    the layout ``manifest`` asks for if it asks for one."""
    return (
        stored is not None
        and all(stored.get(key) == manifest.get(key) for key in SAME_VECTORS)
        and not layout_differs(stored, manifest)
    )


def _version_manifests(client: QdrantClient, alias: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The manifests of the collections among ``names`` built for ``alias``, oldest first."""
    built = []
    for name in names:
        manifest = read_manifest(client, name) or {}
        if manifest.get(ALIAS_FIELD) == alias:
            built.append((str(manifest.get(CREATED_FIELD) or ""), name, manifest))
    return {name: manifest for _, name, manifest in sorted(built, key=lambda item: item[:2])}


def versions(client: QdrantClient, alias: str) -> list[str]:
    """The collections built for ``alias``, oldest first."""
    return list(_version_manifests(client, alias, real_collections(client)))


def choose_version(client: QdrantClient, alias: str, manifest: Mapping[str, Any], rebuild: bool = False) -> str:
    """The collection an indexing run for ``alias`` writes into.

    The served collection itself when ``manifest``'s model filled it (an incremental update), else a version of
    the same model that is not served (an interrupted build, resumed), else a new name. ``rebuild`` always gives a
    new, empty version."""
    names = real_collections(client)
    if alias in names:
        raise AliasError(
            f"'{alias}' is a collection, not an alias: choose another --alias (e.g. {alias}-live), index into it, "
            f"then point your readers at that alias and delete '{alias}' with mpr collections delete"
        )
    served = alias_target(client, alias)
    if not rebuild:
        if served is not None and same_vectors(read_manifest(client, served), manifest):
            return served
        built = _version_manifests(client, alias, names)
        for name in reversed(built):
            if name != served and same_vectors(built[name], manifest):
                return name
    base = f"{alias}-{str(manifest['fingerprint'])[:FINGERPRINT_CHARS]}"
    if manifest.get("backend", "torch") != "torch":
        base += f"-{manifest['backend']}"
    taken = set(names)
    if base not in taken:
        return base
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{base}-{stamp}"
    while name in taken:  # two rebuilds within a second
        time.sleep(1)
        name = f"{base}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    return name


def version_manifest(manifest: Mapping[str, Any], alias: str) -> dict[str, Any]:
    """``manifest`` with the fields of a version of ``alias``."""
    return {**manifest, ALIAS_FIELD: alias, CREATED_FIELD: now()}


def _update_manifest(client: QdrantClient, collection: str, **changes: Any) -> None:
    stored = read_manifest(client, collection) or {}
    client.update_collection(collection, metadata={METADATA_KEY: {**stored, **changes}})


def switch_alias(client: QdrantClient, alias: str, collection: str, remember_previous: bool = True) -> str | None:
    """Point ``alias`` at ``collection`` in one atomic request; returns the collection it pointed at before.

    ``remember_previous`` records that one in ``collection``'s manifest, for :func:`rollback`."""
    previous = alias_target(client, alias)
    if previous == collection:
        return previous
    if remember_previous:
        _update_manifest(client, collection, **{PREVIOUS_FIELD: previous, SERVED_FIELD: now()})
    operations: list[models.AliasOperations] = []
    if previous is not None:
        operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    operations.append(
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))
    )
    client.update_collection_aliases(change_aliases_operations=operations)
    return previous


def rollback(client: QdrantClient, alias: str) -> tuple[str, str]:
    """Point ``alias`` back at the collection it served before the current one; returns (from, to)."""
    served = alias_target(client, alias)
    if served is None:
        raise AliasError(f"there is no alias '{alias}' (mpr collections list shows them)")
    previous = (read_manifest(client, served) or {}).get(PREVIOUS_FIELD)
    if not previous:
        raise AliasError(f"alias '{alias}' serves '{served}', the first collection it served: nothing to roll back to")
    if previous not in real_collections(client):
        raise AliasError(f"alias '{alias}' served '{previous}' before '{served}', but that collection was deleted")
    switch_alias(client, alias, previous, remember_previous=False)  # its own 'previous' leads further back
    return served, previous


def prune(client: QdrantClient, alias: str, keep: int) -> list[str]:
    """Delete the oldest versions of ``alias`` so that ``keep`` remain; the served one is never deleted (a
    rollback to a deleted one is refused). Returns the deleted names."""
    if keep < 1:
        raise AliasError(f"--keep must be at least 1 (the served collection), got {keep}")
    built = versions(client, alias)
    served = alias_target(client, alias)
    removable = [name for name in built if name != served]
    excess = max(0, len(built) - keep)
    deleted = removable[:excess]
    for name in deleted:
        client.delete_collection(name)
    return deleted


def delete(client: QdrantClient, collection: str) -> None:
    """Delete a collection no alias points at."""
    pointing = aliases(client)
    if collection in pointing:
        raise AliasError(f"'{collection}' is an alias; delete the collections behind it, or prune them")
    if collection not in real_collections(client):
        raise AliasError(f"there is no collection '{collection}'")
    serving = sorted(alias for alias, target in pointing.items() if target == collection)
    if serving:
        raise AliasError(
            f"alias {', '.join(serving)} points at '{collection}': switch or roll it back before deleting it"
        )
    client.delete_collection(collection)


def describe(client: QdrantClient) -> list[CollectionInfo]:
    """Every collection, with its model, size, creation time and the aliases serving it."""
    served: dict[str, list[str]] = {}
    for alias, target in aliases(client).items():
        served.setdefault(target, []).append(alias)
    described = []
    for name in real_collections(client):
        manifest = read_manifest(client, name) or {}
        described.append(
            CollectionInfo(
                name=name,
                points=client.count(name, exact=True).count,
                model=manifest.get("model"),
                fingerprint=manifest.get("fingerprint"),
                created_at=manifest.get(CREATED_FIELD),
                alias=manifest.get(ALIAS_FIELD),
                served_by=tuple(sorted(served.get(name, []))),
                layout=recorded_layout(manifest).describe() if manifest.get(LAYOUT_FIELD) else None,
            )
        )
    return described
