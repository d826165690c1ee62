"""``mpr mine``: hard negatives for a dataset split, from BM25 or a dense model, for ``mpr train --negatives``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from mpretriever.mining.run import MiningOutcome


class MethodName(str, Enum):
    bm25 = "bm25"
    dense = "dense"


class MarginReference(str, Enum):
    min = "min"
    mean = "mean"


DATA = "Data and output"
MINER = "Miner"
FILTER = "Choosing negatives"


def summary(outcome: MiningOutcome) -> str:
    """The lines printed after a run: queries, negatives per query, queries left without, what was filtered."""
    stats = outcome.stats
    lines = [
        f"[green]wrote[/] {outcome.output}: {stats.queries} queries mined with {outcome.method}, "
        f"{stats.negatives} negatives",
        f"negatives per query: mean {stats.mean_negatives:.1f}, min {stats.fewest or 0}, max {stats.most}",
        f"queries left without negatives: {stats.without_negatives}",
    ]
    if stats.dropped_by_margin:
        share = stats.dropped_by_margin / max(stats.in_window, 1)
        lines.append(f"candidates dropped by the margin: {stats.dropped_by_margin} ({share:.0%} of the rank window)")
    if outcome.excluded_splits:
        lines.append(f"positives of other splits also excluded: {', '.join(outcome.excluded_splits)}")
    if outcome.skipped_queries:
        lines.append(f"judged queries without a positive (not mined): {outcome.skipped_queries}")
    if stats.without_negatives:
        selection = outcome.selection
        remedies = ["raise --depth"]
        if selection.skip_top:
            remedies.append("lower --skip-top")
        if selection.has_margin:
            remedies.append("lower the margin")
            if selection.margin_reference == "min" and stats.dropped_by_margin:
                remedies.append("use --margin-reference mean")
        lines.append(f"[yellow]hint:[/] for more negatives {', '.join(remedies)}")
    return "\n".join(lines)


def mine_command(
    data: str = typer.Option(
        ...,
        "--data",
        help="BEIR-layout dataset directory, or a BEIR name (as for mpr train).",
        rich_help_panel=DATA,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="JSON-lines file to write (*.jsonl or *.jsonl.gz), read by mpr train --negatives.",
        rich_help_panel=DATA,
    ),
    split: str = typer.Option(
        "train", help="Qrels split whose queries are mined: qrels/SPLIT.tsv.", rich_help_panel=DATA
    ),
    extra_qrels: list[str] = typer.Option(
        [],
        "--extra-qrels",
        help="Another qrels file of positives, PATH[=SOURCE], as given to mpr train: its relevant documents are "
        "never negatives. Repeatable.",
        rich_help_panel=DATA,
    ),
    other_splits: bool = typer.Option(
        True,
        "--other-splits/--no-other-splits",
        help="Also exclude the documents labelled relevant for the query in every other split of the dataset.",
        rich_help_panel=DATA,
    ),
    max_queries: int | None = typer.Option(
        None, min=1, help="Mine only the first N queries of the split (for a quick look).", rich_help_panel=DATA
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing --output file.", rich_help_panel=DATA
    ),
    method: MethodName = typer.Option(
        MethodName.bm25,
        help="bm25: lexical candidates (bm25s, no model). dense: nearest passages under --model, by exact search "
        "over the corpus embeddings, or in --collection.",
        rich_help_panel=MINER,
    ),
    model: str | None = typer.Option(
        None,
        help="dense: an mpretriever run, a sentence-transformers model or a hub id. Default: the packaged "
        "all-MiniLM-L6-v2, or with --collection the model the collection was indexed with.",
        rich_help_panel=MINER,
    ),
    collection: str | None = typer.Option(
        None,
        help="dense: search this Qdrant collection built by mpr index instead of encoding the corpus.",
        rich_help_panel=MINER,
    ),
    batch_size: int = typer.Option(64, min=1, help="dense: texts per forward pass.", rich_help_panel=MINER),
    workers: int | None = typer.Option(
        None,
        min=1,
        help="dense without --collection: corpus-encoding processes (default as for mpr index).",
        rich_help_panel=MINER,
    ),
    backend: BackendOption = EncoderBackend.torch,
    query_max_length: QueryMaxLength = None,
    passage_max_length: PassageMaxLength = None,
    skip_top: int = typer.Option(
        0,
        min=0,
        help="Skip the K best-ranked unlabelled documents (likely unlabelled positives). Ranks count after the "
        "query's labelled documents are removed.",
        rich_help_panel=FILTER,
    ),
    depth: int = typer.Option(
        50, min=1, help="Look no further than rank N: candidates come from ranks K+1..N.", rich_help_panel=FILTER
    ),
    max_negatives: int = typer.Option(
        10, min=1, help="At most M negatives per query, best-ranked first.", rich_help_panel=FILTER
    ),
    relative_margin: float | None = typer.Option(
        None,
        min=0.0,
        help="Drop a candidate scoring above p - |p| * X, p being the reference positive score "
        "(sentence-transformers' relative_margin; 0.05 = NV-Retriever's TopK-PercPos 95%).",
        rich_help_panel=FILTER,
    ),
    absolute_margin: float | None = typer.Option(
        None,
        min=0.0,
        help="Drop a candidate scoring above p - X (sentence-transformers' absolute_margin).",
        rich_help_panel=FILTER,
    ),
    margin_reference: MarginReference = typer.Option(
        MarginReference.min,
        help="The positive score p a margin is taken from: the query's lowest positive score (safest) or the "
        "mean. With BM25 a positive sharing no word with the query scores 0, so 'min' then drops everything.",
        rich_help_panel=FILTER,
    ),
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Mine hard negatives for the queries of a split and write them for mpr train --negatives.

    Candidates come from BM25 or a dense model; a document labelled relevant for the query (in this split, the
    --extra-qrels or, by default, any other split) or judged in this split is never returned. From the ranking of
    the remaining documents, ranks --skip-top+1 .. --depth are kept, minus those too close to the positives'
    score under a margin, and the first --max-negatives become the query's negatives, best first.

    Examples:

      mpr mine --data nfcorpus --method bm25 --skip-top 3 --output negatives/nfcorpus-bm25.jsonl
      mpr mine --data nfcorpus --method dense --model runs/nf-lsepair --relative-margin 0.05 -o nf-dense.jsonl
      mpr mine --data nfcorpus --method dense --collection nfcorpus-lsepair --depth 100 -o nf-qdrant.jsonl
    """
    from mpretriever.index.connection import QdrantSettings
    from mpretriever.mining.run import MineConfig, mine
    from mpretriever.mining.selection import SelectionConfig

    if relative_margin is not None and absolute_margin is not None:
        raise typer.BadParameter("give either --relative-margin or --absolute-margin, not both")
    selection = SelectionConfig(
        skip_top=skip_top,
        depth=depth,
        max_negatives=max_negatives,
        relative_margin=relative_margin,
        absolute_margin=absolute_margin,
        margin_reference=margin_reference.value,
    )
    config = MineConfig(
        data=data,
        output=output,
        split=split,
        method=method.value,
        model=model,
        collection=collection,
        qdrant=QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout)
        if collection
        else None,
        selection=selection,
        extra_qrels=extra_qrels,
        other_splits=other_splits,
        max_queries=max_queries,
        batch_size=batch_size,
        workers=workers,
        backend=backend.value,
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        overwrite=overwrite,
    )
    console = Console(stderr=True)
    outcome = mine(config, console=console)
    console.print(summary(outcome), highlight=False)
