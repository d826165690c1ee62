"""``mpr index``: embed a corpus with a model and write it to a Qdrant collection."""

from __future__ import annotations

import os
from enum import Enum

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
from mpretriever.index.run import model_reference

LAYOUT = "Server layout (of the collections this run creates; an embedded Qdrant ignores it)"


class QuantizationChoice(str, Enum):
    none = "none"
    int8 = "int8"
    binary = "binary"


def index_command(
    data: str = typer.Option(..., help="BEIR-layout dataset directory or BEIR name (as for mpr train)."),
    collection: str | None = typer.Option(
        None, help="Collection to write into in place. Default: the dataset's name (unless --alias)."
    ),
    alias: str | None = typer.Option(
        None,
        help="Index behind this alias instead: a new collection NAME-<model fingerprint> is filled aside (resumed "
        "if interrupted), checked to hold the whole corpus, then NAME is switched to it atomically; readers of "
        "NAME never see a partial index. The same model updates the served collection in place.",
    ),
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
        help="With --alias: build a new, empty collection aside and switch to it. Refused for a collection "
        "written in place (it would be empty while searched): use --alias for another model.",
    ),
    sync: bool = typer.Option(
        False,
        "--sync",
        help="Also delete the points whose documents are no longer in the corpus (without it, they are counted).",
    ),
    allow_other_corpus: bool = typer.Option(
        False,
        "--allow-other-corpus",
        help="Merge this corpus into a collection that holds another one (refused without it).",
    ),
    cache: bool = typer.Option(
        True,
        "--cache/--no-cache",
        help="Read the passage vectors from $MPR_CACHE_DIR/embeddings when mpr eval, or mpr train's dev evaluation, "
        "stored them for this model, backend, passage length and corpus (the index stores none there).",
    ),
    backend: BackendOption = EncoderBackend.torch,
    passage_max_length: PassageMaxLength = None,
    query_max_length: QueryMaxLength = None,
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
    shards: int | None = typer.Option(
        None, min=1, rich_help_panel=LAYOUT, help="Shards to split the collection into (default: one per node)."
    ),
    replicas: int | None = typer.Option(
        None, min=1, rich_help_panel=LAYOUT, help="Copies of each shard, on different nodes (default: 1)."
    ),
    on_disk: bool = typer.Option(
        False, "--on-disk", rich_help_panel=LAYOUT, help="Keep the original vectors memory-mapped on disk, not in RAM."
    ),
    hnsw_m: int | None = typer.Option(
        None, min=0, rich_help_panel=LAYOUT, help="Edges per node of the HNSW graph (default 16); 0: no graph."
    ),
    hnsw_ef_construct: int | None = typer.Option(
        None, min=1, rich_help_panel=LAYOUT, help="Candidates considered while building the graph (default 100)."
    ),
    quantization: QuantizationChoice = typer.Option(
        QuantizationChoice.none,
        rich_help_panel=LAYOUT,
        help="int8: scalar quantisation (4x smaller, in RAM); binary: 32x smaller, for 1,024+ dimensions. Searches "
        "rescore with the original vectors.",
    ),
) -> None:
    """Embed every passage of a corpus and write it to Qdrant, in the layout Haystack's QdrantDocumentStore reads.

    Re-running adds nothing twice (point ids derive from document ids) and an interrupted run resumes, writing
    only what is missing; passages whose title or text changed are embedded again. The model's manifest is
    stored with the collection, so mpr search and the Haystack retriever embed queries the same way. The
    collection records the passage length (resuming with another is refused) and the query length its searches
    use unless they ask for another (--query-max-length here). It also records the backend and the corpus:
    another backend, or another corpus without --allow-other-corpus, is refused. The server layout options apply
    to the collections the run creates, and are recorded in their manifest.

    Under torchrun or accelerate launch, every process encodes its own shard of the corpus (a stable split by
    document id); with a Qdrant server each writes its points itself, with an embedded Qdrant process 0 writes
    them. The alias moves once every shard is complete.

    Examples:

      mpr index --data nfcorpus --model runs/nf-lsepair --collection nfcorpus-lsepair
      mpr index --data nfcorpus --model runs/nf-retrained --alias nfcorpus     # re-index aside, then switch
      mpr collections rollback nfcorpus                                         # back to the previous model
      torchrun --nproc-per-node 4 -m mpretriever.cli index --data nfcorpus --alias nfcorpus --qdrant-url URL
    """
    from mpretriever.data.beir import BeirDataset
    from mpretriever.data.resolve import resolve_dataset
    from mpretriever.index import CollectionLayout, QdrantSettings, index_dataset
    from mpretriever.index.sharded import process_device
    from mpretriever.model.bi_encoder import BiEncoder
    from mpretriever.search.embeddings import EmbeddingCache

    if alias is not None and collection is not None:
        raise typer.BadParameter("give --collection (written in place) or --alias (versioned), not both")
    console = Console(stderr=True)
    dataset = BeirDataset(resolve_dataset(data))
    corpus = dataset.corpus
    if max_docs is not None:
        corpus = corpus.select(range(min(max_docs, len(corpus))))
    encoder = BiEncoder.from_pretrained(
        model,
        device=process_device(),
        backend=backend.value,
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
    )
    outcome = index_dataset(
        encoder,
        corpus,
        dataset.name,
        QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout),
        alias or collection or dataset.name,
        model_reference(model),
        recreate=recreate,
        sync=sync,
        allow_other_corpus=allow_other_corpus,
        batch_size=batch_size,
        workers=workers,
        console=console,
        alias=alias is not None,
        layout=CollectionLayout(
            shard_number=shards,
            replication_factor=replicas,
            on_disk=on_disk,
            hnsw_m=hnsw_m,
            hnsw_ef_construct=hnsw_ef_construct,
            quantization=quantization.value,
        ),
        cache=EmbeddingCache() if cache else None,
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, every process returns the same outcome
        console.print(outcome.summary(), highlight=False, markup=False)
