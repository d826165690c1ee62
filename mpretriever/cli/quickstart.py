"""``mpr quickstart``: fine-tune, index, evaluate and compare with the base model, in one command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def quickstart_command(
    data: str = typer.Option("nfcorpus", help="BEIR-layout dataset directory or BEIR name."),
    output: Path = typer.Option(Path("runs/quickstart"), help="Directory for the model, Qdrant data and results."),
    model: str | None = typer.Option(None, help="Base model. Default: the packaged all-MiniLM-L6-v2 (offline)."),
    loss: str = typer.Option("lsepair", help="Training objective (see mpr train --help)."),
    train_split: str = typer.Option("train-graded", help="Training qrels split (falls back to 'train')."),
    min_grade: int = typer.Option(3, help="Positives need at least this grade."),
    eval_split: str = typer.Option("test", help="Evaluation qrels split."),
    steps: int = typer.Option(40, min=1, help="Training steps."),
    batch_size: int = typer.Option(16, min=1, help="Queries per step."),
    group_size: int = typer.Option(4, min=2, help="Passages per query."),
    learning_rate: float = typer.Option(2e-5, "--lr", help="Peak learning rate."),
    seed: int = typer.Option(42, help="Seed of the run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier quickstart in --output."),
) -> None:
    """Fine-tune the base model with LSEPair, index the corpus into an embedded Qdrant with the base and the
    fine-tuned model, evaluate both through the Haystack retriever and print the comparison.

    Budget: about 15 minutes on 2 CPU cores with the defaults on NFCorpus (40 steps of 16 queries x 4 passages,
    3,633 passages indexed twice, 323 test queries). Everything runs offline.

    Example: mpr quickstart --data nfcorpus --output runs/quickstart
    """
    from mpretriever.quickstart import QuickstartConfig, comparison_table, run_quickstart, summary

    console = Console(stderr=True)
    config = QuickstartConfig(
        data=data,
        output=output,
        model=model,
        loss=loss,
        train_split=train_split,
        min_grade=min_grade,
        eval_split=eval_split,
        steps=steps,
        batch_size=batch_size,
        group_size=group_size,
        learning_rate=learning_rate,
        seed=seed,
        overwrite=overwrite,
    )
    outcome = run_quickstart(config, console=console)
    title = f"{outcome.base.dataset} {config.eval_split}: base vs {loss} fine-tuned ({steps} steps)"
    Console().print(comparison_table(outcome, title))
    for line in summary(outcome):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
