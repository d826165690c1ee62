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


class DevCorpusName(str, Enum):
    auto = "auto"
    full = "full"
    pool = "pool"


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
DEV = "Dev evaluation and best checkpoint"
RUN = "Checkpoints and resuming"
TRAINER = "Hugging Face Trainer"
CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def parse_source_grades(specs: list[str]) -> dict[str, int]:
    """``["llm=1", ...]`` (``--source-min-grade``) as ``{"llm": 1, ...}``."""
    grades: dict[str, int] = {}
    for spec in specs:
        source, _, grade = spec.partition("=")
        if not source or not grade.strip().lstrip("-").isdigit():
            raise typer.BadParameter(f"{spec!r} is not SOURCE=GRADE (e.g. llm=1)", param_hint="--source-min-grade")
        if source in grades:
            raise typer.BadParameter(f"source {source!r} is given twice", param_hint="--source-min-grade")
        grades[source] = int(grade)
    return grades


def _print_trainer_help(value: bool) -> None:
    if value:
        from mpretriever.training.options import trainer_help

        typer.echo(trainer_help())
        raise typer.Exit()


def train_command(
    context: typer.Context,
    data: str = typer.Option(
        ...,
        "--data",
        help="BEIR-layout dataset directory, or a BEIR name (nfcorpus, "
        "scifact, ...) looked up in the cache, then $MPR_DATA_MIRROR, then downloaded; or a FlagEmbedding JSON-lines "
        'file ({"query", "pos", "neg"} per line: split train, its negatives used unless --negatives); or a Hugging '
        "Face dataset: hf:ORG/NAME, hf:SAVED_DIR or hf:FILE.parquet, then optionally @SPLIT and #query=COL,pos=COL.",
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
    source_min_grade: list[str] = typer.Option(
        [],
        "--source-min-grade",
        help="SOURCE=GRADE: the minimum grade of that source's positives, over --min-grade (repeatable; e.g. "
        "--min-grade 3 --source-min-grade llm=1 when an LLM grades on another scale than the humans).",
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
    queries_from: Path | None = typer.Option(
        None,
        help="Train only on the queries this qrels file judges, e.g. the sample mpr annotate labelled (so that "
        "human-only, LLM-only and mixed labels are compared on the same queries).",
        rich_help_panel=DATA,
    ),
    max_queries: int | None = typer.Option(
        None, help="Train on a seeded random sample of this many queries.", rich_help_panel=DATA
    ),
    group_size: int = typer.Option(
        4, min=2, help="Passages per query (positives + negatives).", rich_help_panel=GROUPS
    ),
    max_positives: int = typer.Option(3, min=1, help="At most this many positives per group.", rich_help_panel=GROUPS),
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
    grad_cache: int | None = typer.Option(
        None,
        min=1,
        help="GradCache: embed N texts at a time and back-propagate chunk by chunk, so that memory no longer "
        "grows with --per-device-train-batch-size (same gradients, ~30 % more compute). E.g. 32 on a CPU, 128 on a "
        "GPU.",
        rich_help_panel=GROUPS,
    ),
    eval_split: str | None = typer.Option(
        None,
        help="Evaluate retrieval on this qrels split (e.g. dev) at the start and every --eval-steps, and save the "
        "best checkpoint by --metric-for-best. The dev curve goes to mpretriever.json and dev-curve.png.",
        rich_help_panel=DEV,
    ),
    dev_queries: int | None = typer.Option(
        None,
        min=1,
        help="For a dataset without a dev split: hold N training queries out (chosen by a stable hash of their "
        "ids, never trained on) and evaluate on them as with --eval-split.",
        rich_help_panel=DEV,
    ),
    dev_corpus: DevCorpusName = typer.Option(
        "auto",
        help="What the dev queries are ranked against: full corpus, or a pool (their judged passages + BM25 top "
        "--dev-pool-depth each, built once; figures comparable run to run, not to full-corpus ones); auto: full "
        "up to 20,000 passages.",
        rich_help_panel=DEV,
    ),
    dev_pool_depth: int = typer.Option(
        100, min=1, help="BM25 passages per dev query in the pool.", rich_help_panel=DEV
    ),
    metric_for_best: str = typer.Option(
        "nDCG@10",
        help="The measure that picks the saved checkpoint: nDCG@k, Recall@k, MRR@k, MAP@k or a trec_eval name.",
        rich_help_panel=DEV,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from the last checkpoint in --output, with the same options: any other than --save-steps, "
        "--save-total-limit, --logging-steps, --dataloader-num-workers, --report-to or --grad-cache is refused, with "
        "the list.",
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
    trainer_help: bool = typer.Option(
        False,
        "--trainer-help",
        is_eager=True,
        callback=_print_trainer_help,
        help="List every Hugging Face TrainingArguments field mpr train accepts, and exit.",
        rich_help_panel=TRAINER,
    ),
) -> None:
    """Fine-tune an encoder on a BEIR-layout dataset with a multi-positive objective.

    Several processes or machines: launch the same command with torchrun (or accelerate launch); every
    query is then scored against the passages of every process (see the README, "Scaling up").

    Every Hugging Face TrainingArguments field is an option too, by its name with dashes or underscores
    (mpr train --trainer-help lists them all): --learning-rate, --num-train-epochs, --per-device-train-batch-size,
    --max-steps, --warmup-steps, --lr-scheduler-type, --optim, --bf16, --gradient-checkpointing, --report-to,
    --deepspeed, --eval-steps, --seed...

    mpretriever's defaults where they differ from Hugging Face's (the measured recipe, eval/results/recipe-nfcorpus.md):
    --learning-rate 1e-4 --num-train-epochs 4 --per-device-train-batch-size 16 --warmup-steps 0.1 (a fraction of the
    steps) --seed 42 --save-steps 500 --save-total-limit 2 --logging-steps 10 --logging-first-step --report-to none.

    Every positive of a query is kept with its grade and source. Objectives (--loss):

    [bold]lsepair[/]: pairwise log-sum-exp of every negative against every positive; the most robust.
    [bold]jointlh[/]: joint likelihood of all positives, which compete for the softmax mass.
    [bold]summarglh[/]: -log of the total softmax mass on the positives.
    [bold]rand1lh[/]: InfoNCE on one positive drawn per query per epoch, the others ignored.
    [bold]infonce[/]: InfoNCE on the first (highest-grade) positive, the others ignored.

    Example: mpr train --data nfcorpus --split train --eval-split dev --output runs/nfcorpus-lsepair
    """
    from mpretriever.training.options import UnknownOptionError, parse_trainer_arguments
    from mpretriever.training.run import TrainConfig, train

    try:
        trainer_options = parse_trainer_arguments(context.args)
    except (UnknownOptionError, ValueError) as error:
        raise typer.BadParameter(str(error)) from None

    config = TrainConfig(
        data=data,
        output=output,
        split=split,
        loss=loss.value,
        model=model,
        min_grade=min_grade,
        sources=sources or None,
        label_conflict=label_conflict.value,
        source_min_grade=parse_source_grades(source_min_grade),
        extra_qrels=extra_qrels,
        negatives=negatives,
        queries_from=queries_from,
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
        grad_cache=grad_cache,
        qrels_file=qrels,
        eval_split=eval_split,
        dev_queries=dev_queries,
        dev_corpus=dev_corpus.value,
        dev_pool_depth=dev_pool_depth,
        metric_for_best=metric_for_best,
        resume=resume,
        resume_from=resume_from,
        overwrite=overwrite,
        trainer=trainer_options,
    )
    console = Console(stderr=True)
    outcome = train(config, console=console)
    manifest = outcome.manifest
    if outcome.is_main_process:
        console.print(
            f"[green]saved[/] {outcome.output}: loss {manifest.loss}, {outcome.examples} queries, {outcome.steps} "
            f"steps, final training loss {manifest.final_train_loss:.4f}, {manifest.train_runtime_s:.0f} s"
        )
