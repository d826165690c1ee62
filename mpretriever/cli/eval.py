"""``mpr eval``: BEIR-style retrieval measures of a model on a dataset split, by exact search and/or a collection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

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
    from mpretriever.evaluation.qa import QAReport
    from mpretriever.evaluation.retrieval import EvalReport

DATA = "Data and output"
SEARCH = "Search"
MEASURES = "Measures"
QA = "Question answering"


def results_table(report: EvalReport) -> Table:
    """The measures (rows) of every search mode (columns), with Qdrant minus exact when both ran."""
    from mpretriever.evaluation.retrieval import MODE_TITLES

    table = Table(title=f"{report.dataset} / {report.split}: {report.model}", title_justify="left")
    table.add_column("measure")
    table.add_column("trec_eval", style="dim")
    for result in report.results:
        table.add_column(MODE_TITLES[result.mode], justify="right")
    difference = report.difference()
    if difference is not None:
        table.add_column("Qdrant - exact", justify="right")
    for measure in report.measures:
        row = [measure.label, measure.describe()]
        row += [f"{result.means[measure.label]:.4f}" for result in report.results]
        if difference is not None:
            row.append(f"{difference[measure.label]:+.4f}")
        table.add_row(*row)
    return table


def notes(report: EvalReport) -> list[str]:
    """The lines printed under the table: queries, settings, timings, files."""
    sample = " (a random sample; --max-queries)" if report.sampled else ""
    lines = [
        f"{report.queries} queries evaluated{sample}; {report.without_relevant} of the {report.judged_queries} "
        "judged queries have no relevant document and are excluded from the means, as in BEIR",
        f"top-k {report.top_k}, backend {report.backend}, query length {report.query_max_length} tokens, "
        f"passage length {report.passage_max_length} tokens, "
        f"corpus of {report.corpus_documents} documents"
        + (f", corpus embeddings {report.embeddings}" if report.embeddings else ""),
    ]
    timings = ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s" for name, seconds in report.timings.items())
    lines.append(f"wall time {report.wall_time_s:.1f} s" + (f" ({timings})" if timings else ""))
    if report.output is not None:
        lines.append(f"[green]wrote[/] run files, per-query values and metrics.json to {report.output}")
    return lines


def qa_table(report: QAReport) -> Table:
    """Answer recall@k on every answered question, then the reader's and the oracle's EM / F1 on the sample."""
    from mpretriever.evaluation.retrieval import MODE_TITLES

    table = Table(
        title=f"QA {report.retrieval.dataset} / {report.retrieval.split}: {report.retrieval.model}",
        title_justify="left",
    )
    table.add_column("measure")
    table.add_column("questions", justify="right")
    table.add_column(f"retrieved ({MODE_TITLES[report.mode]})", justify="right")
    table.add_column("oracle (gold passage)", justify="right")
    for label, value in report.recall.items():
        table.add_row(label, str(report.answered), f"{value:.4f}", "")
    for label in ("EM", "F1"):
        oracle = f"{report.oracle[label]:.4f}" if report.oracle else ""
        if report.reader:
            table.add_row(
                f"reader {label} (top {report.reader_k})",
                str(report.reader["questions"]),
                f"{report.reader[label]:.4f}",
                oracle,
            )
    return table


def eval_command(
    data: str = typer.Option(
        ..., "--data", help="BEIR-layout dataset directory, or a BEIR name (as for mpr train).", rich_help_panel=DATA
    ),
    split: str = typer.Option("test", help="Qrels split to evaluate on: qrels/SPLIT.tsv.", rich_help_panel=DATA),
    model: str | None = typer.Option(
        None,
        help="An mpretriever run, a sentence-transformers model or a hub id. Default: the packaged "
        "all-MiniLM-L6-v2, or with --collection the model the collection was indexed with.",
        rich_help_panel=DATA,
    ),
    max_queries: int | None = typer.Option(
        None, min=1, help="Evaluate a random sample of N queries (for a quick look).", rich_help_panel=DATA
    ),
    seed: int = typer.Option(0, help="Seed of the --max-queries and --qa-sample samples.", rich_help_panel=DATA),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Directory for a TREC run file and the per-query values of each search mode, and metrics.json.",
        rich_help_panel=DATA,
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace results already in --output.", rich_help_panel=DATA
    ),
    measure: list[str] = typer.Option(
        [],
        "--measure",
        "-m",
        help="A measure to add: nDCG@k, Recall@k, MRR@k, MAP@k, P@k, Success@k, or any trec_eval measure as "
        "pytrec_eval names it (P_5, ndcg_cut_20, recall_1000, bpref, recip_rank, map). Repeatable.",
        rich_help_panel=MEASURES,
    ),
    default_measures: bool = typer.Option(
        True,
        "--default-measures/--no-default-measures",
        help="Report nDCG@10, Recall@100, MRR@10 and MAP@100 (trec_eval ndcg_cut_10, recall_100, recip_rank on the "
        "top 10, map_cut_100) besides the --measure ones.",
        rich_help_panel=MEASURES,
    ),
    top_k: int = typer.Option(
        100, min=1, help="Documents retrieved per query; at least the deepest cutoff measured.", rich_help_panel=SEARCH
    ),
    collection: str | None = typer.Option(
        None,
        help="Search this Qdrant collection (built by mpr index) through the Haystack retriever instead of "
        "searching exactly; with --exact, both.",
        rich_help_panel=SEARCH,
    ),
    exact: bool = typer.Option(
        False,
        "--exact",
        help="With --collection, also search exactly and show the difference (what approximate search loses).",
        rich_help_panel=SEARCH,
    ),
    cache: bool = typer.Option(
        True,
        "--cache/--no-cache",
        help="Read and store the corpus embeddings in $MPR_CACHE_DIR/embeddings (keyed by model, backend and "
        "corpus), so a corpus is encoded once per model.",
        rich_help_panel=SEARCH,
    ),
    batch_size: int = typer.Option(64, min=1, help="Texts per forward pass.", rich_help_panel=SEARCH),
    workers: int | None = typer.Option(
        None, min=1, help="Corpus-encoding processes (default as for mpr index).", rich_help_panel=SEARCH
    ),
    qa: bool = typer.Option(
        False,
        "--qa",
        help="Also evaluate question answering (datasets whose queries carry metadata.answers): answer recall@k "
        "of the run, and EM / F1 of the RAG pipeline's generator on a sample, next to an oracle fed the gold "
        "passage.",
        rich_help_panel=QA,
    ),
    qa_sample: int = typer.Option(
        100,
        min=0,
        help="Questions the generator answers (seeded by --seed; 0: answer recall only).",
        rich_help_panel=QA,
    ),
    qa_reader_k: int = typer.Option(3, min=1, help="Retrieved passages in the reader's prompt.", rich_help_panel=QA),
    qa_oracle_split: str = typer.Option(
        "gold", help="Qrels split whose relevant passage the oracle reads.", rich_help_panel=QA
    ),
    qa_pipeline: Path | None = typer.Option(
        None,
        help="RAG pipeline YAML whose prompt builder and generator read \\[default: the project's pipelines/rag.yml].",
        rich_help_panel=QA,
    ),
    backend: BackendOption = EncoderBackend.torch,
    query_max_length: QueryMaxLength = None,
    passage_max_length: PassageMaxLength = None,
    qdrant_path: QdrantPath = DEFAULT_QDRANT_PATH,
    qdrant_url: QdrantUrl = None,
    api_key_env: ApiKeyEnv = DEFAULT_API_KEY_ENV,
    timeout: QdrantTimeout = DEFAULT_TIMEOUT_S,
) -> None:
    """Evaluate a retriever on the queries of a split: nDCG@10, Recall@100, MRR@10 and MAP@100 by default.

    The corpus is embedded with the model (cached for the next evaluation) and searched exactly; with
    --collection the Qdrant collection is searched through the Haystack retriever instead, and with --exact
    --collection both, side by side. Measures come from trec_eval (pytrec_eval) with graded qrels: grades are
    nDCG gains, grade >= 1 is relevant. Queries without a relevant document are left out of the means (BEIR's
    convention).

    Examples:

      mpr eval --data nfcorpus --split test
      mpr eval --model runs/nf-lsepair --data nfcorpus -m P_5 -m ndcg_cut_20 -m bpref --output runs/nf-lsepair-eval
      mpr eval --data nfcorpus --collection nfcorpus --exact --qdrant-url http://localhost:6333
    """
    from mpretriever.evaluation.metrics import DEFAULT_MEASURES
    from mpretriever.evaluation.qa import QA_METRICS_FILE, QA_PREDICTIONS_FILE, NoAnswersError, QAConfig, evaluate_qa
    from mpretriever.evaluation.retrieval import EvalConfig, evaluate_retrieval
    from mpretriever.index.connection import QdrantSettings

    measures = [*(DEFAULT_MEASURES if default_measures else ()), *measure]
    if not measures:
        raise typer.BadParameter("no measure left: give --measure with --no-default-measures")
    if exact and collection is None:
        raise typer.BadParameter("--exact compares exact search with a --collection; without one it is the default")
    config = EvalConfig(
        data=data,
        split=split,
        model=model,
        measures=measures,
        top_k=top_k,
        collection=collection,
        exact=True if exact else None,
        qdrant=QdrantSettings.from_env(path=qdrant_path, url=qdrant_url, api_key_env=api_key_env, timeout=timeout)
        if collection
        else None,
        backend=backend.value,
        batch_size=batch_size,
        workers=workers,
        max_queries=max_queries,
        seed=seed,
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        output=output,
        overwrite=overwrite,
        cache=cache,
    )
    if qa:
        qa_config = QAConfig(
            sample=qa_sample, seed=seed, reader_k=qa_reader_k, oracle_split=qa_oracle_split, pipeline=qa_pipeline
        )
        try:
            qa_report = evaluate_qa(config, qa_config, console=Console(stderr=True))
        except NoAnswersError as error:
            raise typer.BadParameter(f"--qa: {error}") from None
        report = qa_report.retrieval
    else:
        report = evaluate_retrieval(config, console=Console(stderr=True))
    console = Console()
    console.print(results_table(report))
    for line in notes(report):
        console.print(line, highlight=False, soft_wrap=True)
    if qa:
        console.print(qa_table(qa_report))
        console.print(
            f"reader: {len(qa_report.sample)} questions sampled with seed {seed}; QA wall time "
            f"{qa_report.wall_time_s:.1f} s"
            + (f"; wrote {QA_METRICS_FILE} and {QA_PREDICTIONS_FILE}" if report.output is not None else ""),
            highlight=False,
            soft_wrap=True,
        )
