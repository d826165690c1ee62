"""One-shot initialisation of the demo (the ``init`` service of ``docker-compose.yml``): make the collection hold
exactly the sample dataset's corpus, with the library's indexer (as ``mpr index --alias --sync`` does).

``python -m mpretriever.service.init_index`` reads the service's variables (``MPR_COLLECTION``, ``MPR_QDRANT_URL``
or ``MPR_QDRANT_PATH``, ``QDRANT_API_KEY``, ``MPR_MODEL``; see :mod:`mpretriever.service.settings`) and:

- ``MPR_INDEX_DATA``: a BEIR-layout dataset directory (or a BEIR name, resolved as ``mpr index --data`` does);
- ``MPR_INDEX_MAX_DOCS``: index only the first N documents (default: all).

``MPR_COLLECTION`` is an alias. The model is ``MPR_MODEL``, or else the one the served collection records (the
one the service then searches with), or else the packaged default. With the model the alias serves, documents
missing from it, or whose title or text changed, are embedded and written in place; points whose documents are no
longer in the corpus (or beyond ``MPR_INDEX_MAX_DOCS``) are deleted. With another model (a retrained one in
``MPR_MODEL``), a new collection is filled aside and the alias switched to it once it holds the whole corpus, so
``docker compose up`` after retraining swaps models while the service keeps answering. An interrupted run leaves
the alias where it was; the next run resumes the new collection.
"""

from __future__ import annotations

import os
import sys

from mpretriever.data.beir import BeirDataset
from mpretriever.data.errors import DataFormatError
from mpretriever.data.resolve import DatasetNotFoundError, resolve_dataset
from mpretriever.index.collection import read_manifest
from mpretriever.index.run import index_dataset, model_reference
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.service.settings import ServiceSettings

DATA_ENV = "MPR_INDEX_DATA"
MAX_DOCS_ENV = "MPR_INDEX_MAX_DOCS"


def indexing_model(settings: ServiceSettings) -> str | None:
    """``MPR_MODEL``, or else the model the collection records; ``None`` (the default model) for a new one."""
    if settings.model:
        return settings.model
    client = settings.qdrant.connect()
    try:
        if not client.collection_exists(settings.collection):
            return None
        return (read_manifest(client, settings.collection) or {}).get("model")
    finally:
        client.close()


def main() -> None:
    """Exit 0 once the collection holds exactly the corpus; non-zero, with a one-line message, otherwise."""
    data = os.environ.get(DATA_ENV, "").strip()
    if not data:
        sys.exit(f"error: set {DATA_ENV} to a BEIR-layout dataset directory (see the README's Docker demo)")
    try:
        max_docs = int(os.environ[MAX_DOCS_ENV]) if os.environ.get(MAX_DOCS_ENV, "").strip() else None
    except ValueError:
        sys.exit(f"error: {MAX_DOCS_ENV} must be an integer, got {os.environ[MAX_DOCS_ENV]!r}")
    settings = ServiceSettings.from_env()
    try:
        dataset = BeirDataset(resolve_dataset(data))
        corpus = dataset.corpus
    except (DataFormatError, DatasetNotFoundError) as error:
        sys.exit(f"error: {error} (set {DATA_ENV}; see the README's Docker demo for getting a dataset)")
    if max_docs is not None:
        corpus = corpus.select(range(min(max_docs, len(corpus))))
    collection, location = settings.collection, settings.qdrant.location
    try:
        model = indexing_model(settings)
        print(f"checking '{collection}' in {location} against {len(corpus)} documents of {data}", file=sys.stderr)
        outcome = index_dataset(
            BiEncoder.from_pretrained(model),
            corpus,
            dataset.name,
            settings.qdrant,
            collection,
            model_reference(model),
            sync=True,
            alias=True,
        )
    except (OSError, ValueError) as error:  # Qdrant unreachable, a model not found, a collection refused
        sys.exit(f"error: {error}")
    if outcome.changed_anything:
        print(outcome.summary(), file=sys.stderr)
    else:
        print(
            f"collection '{collection}' in {location} already holds the {len(corpus)} documents, unchanged: "
            "nothing to index",
            file=sys.stderr,
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
