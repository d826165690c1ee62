"""One-shot initialisation of the demo (the ``init`` service of ``docker-compose.yml``): ``mpr index`` the sample
dataset into the collection unless the collection already holds the whole corpus.

``python -m mpretriever.service.init_index`` reads the service's variables (``MPR_COLLECTION``, ``MPR_QDRANT_URL``
or ``MPR_QDRANT_PATH``, ``QDRANT_API_KEY``, ``MPR_MODEL``; see :mod:`mpretriever.service.settings`) and:

- ``MPR_INDEX_DATA``: a BEIR-layout dataset directory (or a BEIR name, resolved as ``mpr index --data`` does);
- ``MPR_INDEX_MAX_DOCS``: index only the first N documents (default: all).

An interrupted run leaves an incomplete collection; the next run resumes it (``mpr index`` writes only what is
missing).
"""

from __future__ import annotations

import os
import sys

from mpretriever.data.beir import BeirDataset
from mpretriever.data.errors import DataFormatError
from mpretriever.data.resolve import DatasetNotFoundError, resolve_dataset
from mpretriever.index.connection import DEFAULT_API_KEY_ENV, QdrantUnavailableError
from mpretriever.service.settings import ServiceSettings

DATA_ENV = "MPR_INDEX_DATA"
MAX_DOCS_ENV = "MPR_INDEX_MAX_DOCS"


def index_arguments(settings: ServiceSettings, data: str, max_docs: int | None) -> list[str]:
    """The ``mpr index`` command line that fills ``settings``'s collection from ``data``."""
    qdrant = settings.qdrant
    arguments = ["index", "--data", data, "--collection", settings.collection, "--timeout", str(qdrant.timeout)]
    if qdrant.url:
        arguments += ["--qdrant-url", qdrant.url, "--api-key-env", DEFAULT_API_KEY_ENV]
    else:
        arguments += ["--qdrant-path", str(qdrant.path)]
    if settings.model:
        arguments += ["--model", settings.model]
    if max_docs is not None:
        arguments += ["--max-docs", str(max_docs)]
    return arguments


def points_in_collection(settings: ServiceSettings) -> int | None:
    """How many points the collection holds; ``None`` when it does not exist."""
    client = settings.qdrant.connect()
    try:
        if not client.collection_exists(settings.collection):
            return None
        return client.count(settings.collection, exact=True).count
    finally:
        client.close()


def main() -> None:
    """Exit 0 when the collection is complete or once it is indexed; non-zero, with a message, otherwise."""
    from mpretriever.cli.app import main as mpr

    data = os.environ.get(DATA_ENV, "").strip()
    if not data:
        sys.exit(f"error: set {DATA_ENV} to a BEIR-layout dataset directory (see the README's Docker demo)")
    try:
        max_docs = int(os.environ[MAX_DOCS_ENV]) if os.environ.get(MAX_DOCS_ENV, "").strip() else None
    except ValueError:
        sys.exit(f"error: {MAX_DOCS_ENV} must be an integer, got {os.environ[MAX_DOCS_ENV]!r}")
    settings = ServiceSettings.from_env()
    try:
        documents = len(BeirDataset(resolve_dataset(data)).corpus)
    except (DataFormatError, DatasetNotFoundError) as error:
        sys.exit(f"error: {error} (set {DATA_ENV}; see the README's Docker demo for getting a dataset)")
    expected = min(documents, max_docs) if max_docs is not None else documents
    try:
        points = points_in_collection(settings)
    except QdrantUnavailableError as error:
        sys.exit(f"error: {error}")
    if points is not None and points >= expected:
        print(
            f"collection '{settings.collection}' in {settings.qdrant.location} already holds {points} points: "
            "nothing to index",
            file=sys.stderr,
        )
        sys.exit(0)
    print(f"indexing {expected} documents of {data} into '{settings.collection}'", file=sys.stderr, flush=True)
    sys.argv = ["mpr", *index_arguments(settings, data, max_docs)]
    mpr()


if __name__ == "__main__":
    main()
