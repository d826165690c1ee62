"""``mpr index``: embed a corpus with a model and write it to a Qdrant collection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mpretriever.cli.options import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_QDRANT_PATH,
    DEFAULT_TIMEOUT_S,
    ApiKeyEnv,
    BackendOption,
    EncoderBackend,
    PassageMaxLength,
    QdrantPath,
    QdrantTimeout,
    QdrantUrl,
    QueryMaxLength,
)
from mpretriever.data.beir import BeirDataset
from mpretriever.data.resolve import resolve_dataset
from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus
from mpretriever.model.bi_encoder import DEFAULT_MODEL_NAME, BiEncoder


def model_reference(model: str | None) -> str:
    """How the collection records the model: an absolute path for local directories, else the name given."""
    if model is None:
        return DEFAULT_MODEL_NAME
    return str(Path(model).resolve()) if Path(model).exists() else model


def index_command(
    data: str = typer.Option(..., help="BEIR-layout dataset directory or BEIR name (as for mpr train)."),
    collection: str | None = typer.Option(None, help="Collection name. Default: the dataset's name."),
    model: str | None = typer.Option(
        None,
        help="An mpretriever run, a sentence-transformers model or a hub id. Default: the packaged all-MiniLM-L6-v2.",
    ),
    batch_size: int = typer.Option(64, min=1, help="Passages per forward pass."),
    max_docs: int | None = typer.Option(None, min=1, help="Index only the first N documents of the corpus."),
    workers: int | None = typer.Option(
        None,
        min=1,
        help="Encoding processes. Default: one per core on a "
        "CPU-only machine for corpora of 2,000+ documents, else one.",
    ),
    recreate: bool = typer.Option(
        False,
        "--recreate",
        help="Delete and rebuild the collection, e.g. for "
        "another model; without it a model or dimension mismatch is refused.",
    ),
    backend: BackendOption = EncoderBackend.torch,
    passage_max_length: PassageMaxLength = None,
    query_max_length: QueryMaxLength = None,
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Embed every passage of a corpus and write it to Qdrant, in the layout Haystack's QdrantDocumentStore reads.

    Re-running adds nothing twice (point ids derive from document ids) and an interrupted run resumes, writing
    only what is missing. The model's manifest is stored with the collection, so `mpr search` and the Haystack
    retriever embed queries the same way. The collection records the passage length (resuming with another is
    refused) and the query length its searches use unless they ask for another (--query-max-length here).

    Example: `mpr index --data nfcorpus --model runs/nf-lsepair --collection nfcorpus-lsepair`
    """
    console = Console(stderr=True)
    dataset = BeirDataset(resolve_dataset(data))
    corpus = dataset.corpus
    if max_docs is not None:
        corpus = corpus.select(range(min(max_docs, len(corpus))))
    name = collection or dataset.name
    encoder = BiEncoder.from_pretrained(
        model, backend=backend.value, query_max_length=query_max_length, passage_max_length=passage_max_length
    )
    settings = QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout)
    client = settings.connect()
    try:
        created = ensure_collection(
            client, name, collection_manifest(encoder, model_reference(model)), recreate=recreate
        )
        stats = index_corpus(encoder, corpus, client, name, batch_size=batch_size, workers=workers, console=console)
    finally:
        client.close()
    console.print(
        f"[green]{'created' if created else 'updated'}[/] collection '{name}' in {settings.location}: "
        f"{stats.written} written, {stats.already_present} already present, "
        f"{stats.points_in_collection} points in the collection"
    )
