"""``mpr export``: a BEIR split written in another format (FlagEmbedding's JSON lines)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console


class ExportFormat(str, Enum):
    flagembedding = "flagembedding"


def export_command(
    data: str = typer.Option(..., help="BEIR-layout dataset directory or BEIR name (as for mpr train)."),
    split: str = typer.Option("train", help="The qrels split to export."),
    output: Path = typer.Option(..., "--output", "-o", help="The file to write (JSON lines)."),
    export_format: ExportFormat = typer.Option(ExportFormat.flagembedding, "--format", help="The format to write."),
    negatives: Path | None = typer.Option(
        None, help="Hard negatives to write as each query's 'neg' (mpr mine output); judged passages are left out."
    ),
    min_grade: int = typer.Option(1, min=1, help="Positives are the judged passages of this grade or above."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Write a BEIR split as FlagEmbedding fine-tuning data: one line per query with a positive, {"query", "pos",
    "pos_scores" (the grades), "neg"}. mpr train --data reads such files back.

    Example: mpr export --data nfcorpus --split train --negatives nf-bm25.jsonl -o nf-train.jsonl
    """
    from mpretriever.data.beir import BeirDataset
    from mpretriever.data.export import export_flagembedding
    from mpretriever.data.resolve import resolve_dataset

    dataset = BeirDataset(resolve_dataset(data))
    stats = export_flagembedding(dataset, split, output, negatives, min_grade=min_grade, overwrite=overwrite)
    Console(stderr=True).print(
        f"wrote {output} ({export_format.value}): {stats.queries} queries, {stats.positives} positives, "
        f"{stats.negatives} negatives; {stats.without_positive} queries without a positive left out",
        highlight=False,
    )
