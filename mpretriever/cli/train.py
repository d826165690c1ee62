"""``mpr train``: fine-tune an encoder with a multi-positive objective."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

# The names of mpretriever.training.objectives.OBJECTIVES (a test keeps them equal): that module loads torch,
# which `mpr --help` must not wait for.
OBJECTIVE_NAMES = ("lsepair", "jointlh", "summarglh", "rand1lh", "infonce")
LossName = Enum("LossName", {name.upper(): name for name in OBJECTIVE_NAMES}, type=str)  # type: ignore[misc]


class PrecisionName(str, Enum):
    no = "no"
    fp16 = "fp16"
    bf16 = "bf16"


class PoolingName(str, Enum):
    mean = "mean"
    cls = "cls"


class SimilarityName(str, Enum):
    cosine = "cosine"
    dot = "dot"


class LabelConflictName(str, Enum):
    """The rules of mpretriever.data.examples.LabelConflict (a test keeps them equal), without loading that module."""

    max = "max"
    min = "min"
    prefer_human = "prefer-human"


class PositiveAggregation(str, Enum):
    all = "all"
    min = "min"
    max = "max"


class NegativeAggregation(str, Enum):
    all = "all"
    max = "max"


DATA = "Data and labels"
GROUPS = "Groups and loss"
ENCODER = "Encoder (default: inherited from --model)"
OPTIM = "Optimisation"
RUN = "Checkpoints and resuming"


def train_command(
    data: str = typer.Option(
        ...,
        "--data",
        help="BEIR-layout dataset directory, or a BEIR name (nfcorpus, "
        "scifact, ...) looked up in the cache, then $MPR_DATA_MIRROR, then downloaded.",
        rich_help_panel=DATA,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Directory for checkpoints and the final model (sentence-transformers format + mpretriever.json).",
        rich_help_panel=RUN,
    ),
    split: str = typer.Option("train", help="Qrels split to train on: qrels/<split>.tsv.", rich_help_panel=DATA),
    qrels: Path | None = typer.Option(
        None,
        help="Train on this qrels file (query-id, corpus-id, grade[, source]) instead of --split, e.g. a relabelled "
        "or noise-injected copy.",
        rich_help_panel=DATA,
    ),
    loss: LossName = typer.Option("lsepair", help="Training objective (see the list above).", rich_help_panel=GROUPS),  # type: ignore[valid-type]
    model: str | None = typer.Option(
        None,
        help="Base model: hub id, local path or an earlier run. "
        "Default: the packaged all-MiniLM-L6-v2 (works offline).",
        rich_help_panel=ENCODER,
    ),
    min_grade: int = typer.Option(
        1,
        help="Minimum relevance grade of a positive; judged passages below it are ignored, never negatives.",
        rich_help_panel=DATA,
    ),
    sources: list[str] | None = typer.Option(
        None,
        "--source",
        help="Only judgements from this source count (repeatable; e.g. human, llm). A passage another source "
        "judged relevant is ignored, never a negative.",
        rich_help_panel=DATA,
    ),
    label_conflict: LabelConflictName = typer.Option(
        "max",
        help="When the selected sources grade a passage differently (human 0, llm 3): max = the highest grade "
        "decides (human and LLM positives pooled), min = the lowest, prefer-human = a human judgement decides.",
        rich_help_panel=DATA,
    ),
    extra_qrels: list[str] = typer.Option(
        [],
        "--extra-qrels",
        help="Another qrels file of positives, PATH[=SOURCE] (source default: llm). Repeatable.",
        rich_help_panel=DATA,
    ),
    negatives: Path | None = typer.Option(
        None,
        help="Hard negatives: JSONL {query_id, negatives: [...]} or TSV "
        "query-id<TAB>doc-id. Default: random corpus passages.",
        rich_help_panel=DATA,
    ),
    max_queries: int | None = typer.Option(
        None, help="Train on a seeded random sample of this many queries.", rich_help_panel=DATA
    ),
    group_size: int = typer.Option(
        8, min=2, help="Passages per query (positives + negatives).", rich_help_panel=GROUPS
    ),
    max_positives: int = typer.Option(4, min=1, help="At most this many positives per group.", rich_help_panel=GROUPS),
    temperature: float | None = typer.Option(
        None, help="Score temperature, > 0. Default: 0.05 for cosine, 1 for dot.", rich_help_panel=GROUPS
    ),
    normalize_loss: bool | None = typer.Option(
        None,
        "--normalize-loss/--no-normalize-loss",
        help="jointlh, lsepair: divide each query's loss by its number of positives.",
        rich_help_panel=GROUPS,
    ),
    positive_agg: PositiveAggregation | None = typer.Option(
        None,
        help="lsepair: aggregate all positives, or only the weakest (min) or strongest (max).",
        rich_help_panel=GROUPS,
    ),
    negative_agg: NegativeAggregation | None = typer.Option(
        None, help="lsepair: aggregate all negatives, or only the hardest (max).", rich_help_panel=GROUPS
    ),
    pooling: PoolingName | None = typer.Option(None, help="Pooling of token embeddings.", rich_help_panel=ENCODER),
    normalize: bool | None = typer.Option(
        None, "--normalize/--no-normalize", help="L2-normalise embeddings.", rich_help_panel=ENCODER
    ),
    similarity: SimilarityName | None = typer.Option(None, help="Score function.", rich_help_panel=ENCODER),
    query_prefix: str | None = typer.Option(None, help="Text prepended to every query.", rich_help_panel=ENCODER),
    passage_prefix: str | None = typer.Option(None, help="Text prepended to every passage.", rich_help_panel=ENCODER),
    query_max_length: int = typer.Option(32, min=1, help="Query length in tokens.", rich_help_panel=ENCODER),
    passage_max_length: int = typer.Option(128, min=1, help="Passage length in tokens.", rich_help_panel=ENCODER),
    batch_size: int = typer.Option(
        32, help="Queries per device and step (each brings --group-size passages).", rich_help_panel=OPTIM
    ),
    gradient_accumulation_steps: int = typer.Option(
        1, help="Steps to accumulate before an update.", rich_help_panel=OPTIM
    ),
    grad_cache: int | None = typer.Option(
        None,
        min=1,
        help="GradCache: embed N texts at a time and back-propagate chunk by chunk, so that memory no longer "
        "grows with --batch-size (same gradients, ~30 % more compute). E.g. 32 on a CPU, 128 on a GPU.",
        rich_help_panel=OPTIM,
    ),
    epochs: float = typer.Option(1.0, help="Passes over the training queries.", rich_help_panel=OPTIM),
    max_steps: int = typer.Option(-1, help="Stop after this many updates (overrides --epochs).", rich_help_panel=OPTIM),
    learning_rate: float = typer.Option(2e-5, "--lr", help="Peak learning rate.", rich_help_panel=OPTIM),
    warmup: float = typer.Option(
        0.1, help="Linear warm-up: a fraction of the steps if < 1, else steps.", rich_help_panel=OPTIM
    ),
    weight_decay: float = typer.Option(0.0, help="AdamW weight decay.", rich_help_panel=OPTIM),
    precision: PrecisionName = typer.Option("no", help="Mixed precision (fp16 needs a GPU).", rich_help_panel=OPTIM),
    seed: int = typer.Option(
        42, help="Seed of the model, the sampling of groups and the data order.", rich_help_panel=OPTIM
    ),
    save_steps: int = typer.Option(500, min=1, help="Save a checkpoint every N updates.", rich_help_panel=RUN),
    save_total_limit: int = typer.Option(2, min=1, help="Keep at most N checkpoints.", rich_help_panel=RUN),
    logging_steps: int = typer.Option(10, min=1, help="Log the loss every N updates.", rich_help_panel=RUN),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from the last checkpoint in --output, with the same options: any other than --save-steps, "
        "--save-total-limit, --logging-steps, --workers or --grad-cache is refused, with the list.",
        rich_help_panel=RUN,
    ),
    resume_from: Path | None = typer.Option(
        None, help="Continue from this checkpoint directory (same options, as for --resume).", rich_help_panel=RUN
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the run in --output: once the data and model are loaded, the directory is emptied (all its "
        "checkpoints included). A non-empty directory that is not a run is refused.",
        rich_help_panel=RUN,
    ),
    workers: int = typer.Option(0, min=0, help="Data-loader worker processes.", rich_help_panel=OPTIM),
) -> None:
    """Fine-tune an encoder on a BEIR-layout dataset with a multi-positive objective.

    Several processes or machines: launch the same command with torchrun (or accelerate launch); every
    query is then scored against the passages of every process (see the README, "Scaling up").

    Every positive of a query is kept with its grade and source. Objectives (--loss):

    [bold]lsepair[/]: pairwise log-sum-exp of every negative against every positive; the most robust.
    [bold]jointlh[/]: joint likelihood of all positives, which compete for the softmax mass.
    [bold]summarglh[/]: -log of the total softmax mass on the positives.
    [bold]rand1lh[/]: InfoNCE on one positive drawn per query per epoch, the others ignored.
    [bold]infonce[/]: InfoNCE on the first (highest-grade) positive, the others ignored.

    Example: mpr train --data nfcorpus --split train --loss lsepair --output runs/nfcorpus-lsepair
    """
    from mpretriever.training.run import TrainConfig, train

    config = TrainConfig(
        data=data,
        output=output,
        split=split,
        loss=loss.value,
        model=model,
        min_grade=min_grade,
        sources=sources or None,
        label_conflict=label_conflict.value,
        extra_qrels=extra_qrels,
        negatives=negatives,
        max_queries=max_queries,
        group_size=group_size,
        max_positives=max_positives,
        temperature=temperature,
        normalize_loss=normalize_loss,
        positive_agg=positive_agg.value if positive_agg else None,
        negative_agg=negative_agg.value if negative_agg else None,
        pooling=pooling.value if pooling else None,
        normalize=normalize,
        similarity=similarity.value if similarity else None,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        grad_cache=grad_cache,
        qrels_file=qrels,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        warmup=warmup,
        weight_decay=weight_decay,
        precision=precision.value,
        seed=seed,
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        logging_steps=logging_steps,
        resume=resume,
        resume_from=resume_from,
        overwrite=overwrite,
        dataloader_workers=workers,
    )
    console = Console(stderr=True)
    outcome = train(config, console=console)
    manifest = outcome.manifest
    if outcome.is_main_process:
        console.print(
            f"[green]saved[/] {outcome.output}: loss {manifest.loss}, {outcome.examples} queries, {outcome.steps} "
            f"steps, final training loss {manifest.final_train_loss:.4f}, {manifest.train_runtime_s:.0f} s"
        )
