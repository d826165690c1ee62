"""Evaluating a retriever on a BEIR-layout split: the library side of ``mpr eval``.

:func:`evaluate_retrieval` ranks the corpus for every query of the split that has a relevant document, by exact
search over the model's corpus embeddings (:class:`~mpretriever.search.exact.ExactIndex`, embeddings cached on
disk) and/or through a Qdrant collection with the Haystack retriever the pipelines use
(:class:`~mpretriever.haystack.MPRetriever`), then scores each ranking with ``trec_eval`` (pytrec_eval, see
:mod:`mpretriever.evaluation.metrics`). With both, the difference shows what the collection's approximate search
costs. Optionally it saves each run as a TREC run file, the per-query values and a ``metrics.json`` summary.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import Progress

from mpretriever import __version__
from mpretriever.data.beir import BeirDataset, grades
from mpretriever.data.resolve import resolve_dataset
from mpretriever.evaluation.metrics import (
    DEFAULT_MEASURES,
    RELEVANCE_LEVEL,
    Measure,
    evaluate_run,
    mean_values,
    parse_measures,
    relevant_queries,
    required_depth,
)
from mpretriever.evaluation.runs import write_run
from mpretriever.evaluation.significance import save_per_query
from mpretriever.files import OutputExistsError, write_text_atomically
from mpretriever.index.connection import QdrantSettings
from mpretriever.model.backends import Backend
from mpretriever.progress import task_progress
from mpretriever.search.ranking import Hit, trec_order

logger = logging.getLogger(__name__)

SearchMode = Literal["exact", "qdrant"]
MODE_TITLES: dict[str, str] = {"exact": "exact", "qdrant": "Qdrant"}
QUERY_BATCH = 256
PROGRESS_CHUNK = 1024  # passages encoded between two updates of the progress bar (encode_corpus defaults to 4096)
METRICS_FILE = "metrics.json"
PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (packaged)"


def run_file(mode: str) -> str:
    """The name of the TREC run file of a search mode in the output directory."""
    return f"run-{mode}.trec"


def per_query_file(mode: str) -> str:
    """The name of the per-query values of a search mode in the output directory."""
    return f"per-query-{mode}.json"


@dataclass
class EvalConfig:
    """Every option of an evaluation.

    ``model``: an mpretriever run, a sentence-transformers model or a hub id (default: the packaged
    all-MiniLM-L6-v2, or with ``collection`` the model the collection records). Search is exact unless
    ``collection`` is given; ``exact=True`` with a collection runs both. ``measures``: names for
    :func:`~mpretriever.evaluation.metrics.parse_measures`; ``top_k`` hits are retrieved per query and must reach
    the deepest cutoff. ``max_queries`` evaluates a random sample (``seed``) of the queries. Queries are embedded
    up to the model's maximum sequence length and passages at a trained run's passage length (another model's
    maximum) unless ``query_max_length`` or ``passage_max_length`` (exact search alone) ask for others; with a
    collection, both searches use the collection's passage length and, unless ``query_max_length`` is given, its
    query length. ``output``: a directory for the run files, per-query
    values and ``metrics.json``; existing files there are replaced only with ``overwrite``. ``cache=False``
    encodes the corpus even when its embeddings are cached (and does not store them).
    """

    data: str
    split: str = "test"
    model: str | None = None
    measures: Sequence[str] = DEFAULT_MEASURES
    top_k: int = 100
    collection: str | None = None
    exact: bool | None = None
    qdrant: QdrantSettings | None = None
    backend: Backend = "torch"
    batch_size: int = 64
    workers: int | None = None
    max_queries: int | None = None
    seed: int = 0
    query_max_length: int | None = None
    passage_max_length: int | None = None
    output: Path | None = None
    overwrite: bool = False
    cache: bool = True
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.output is not None:
            self.output = Path(self.output)
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be at least 1, got {self.max_queries}")
        if self.exact is False and self.collection is None:
            raise ValueError("without exact search a --collection to search is needed")
        if self.passage_max_length is not None and self.collection is not None:
            raise ValueError(
                "--passage-max-length applies to exact search alone: the passages of a collection were embedded "
                "when it was indexed, so exact and Qdrant results would not be comparable"
            )

    @property
    def modes(self) -> list[SearchMode]:
        """The searches to run: ``exact`` unless only a collection is searched, ``qdrant`` with a collection."""
        modes: list[SearchMode] = []
        if self.exact or (self.exact is None and self.collection is None):
            modes.append("exact")
        if self.collection is not None:
            modes.append("qdrant")
        return modes


@dataclass
class ModeResult:
    """One search mode's run, its per-query values and their means, and the seconds its searching took."""

    mode: SearchMode
    run: dict[str, list[Hit]]
    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    search_s: float


@dataclass
class EvalReport:
    """What :func:`evaluate_retrieval` measured, and on what."""

    model: str
    fingerprint: str | None
    backend: str
    passage_max_length: int | None
    dataset: str
    dataset_path: str
    split: str
    measures: list[Measure]
    top_k: int
    queries: int
    judged_queries: int
    without_relevant: int
    sampled: bool
    results: list[ModeResult]
    collection: str | None = None
    served_collection: str | None = None  # the collection searched: ``collection``, or the one its alias serves
    query_max_length: int | None = None
    corpus_documents: int = 0
    embeddings: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    output: Path | None = None

    def result(self, mode: str) -> ModeResult:
        return next(r for r in self.results if r.mode == mode)

    def difference(self) -> dict[str, float] | None:
        """Qdrant minus exact, per measure, when both ran."""
        modes = {r.mode for r in self.results}
        if modes != {"exact", "qdrant"}:
            return None
        exact, qdrant = self.result("exact").means, self.result("qdrant").means
        return {label: qdrant[label] - exact[label] for label in exact}

    def summary(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        summary: dict[str, Any] = {
            "model": self.model,
            "model_fingerprint": self.fingerprint,
            "backend": self.backend,
            "query_max_length": self.query_max_length,
            "passage_max_length": self.passage_max_length,
            "dataset": self.dataset,
            "dataset_path": self.dataset_path,
            "split": self.split,
            "search_modes": [r.mode for r in self.results],
            "collection": self.collection,
            "served_collection": self.served_collection,
            "top_k": self.top_k,
            "measures": {m.label: m.describe() for m in self.measures},
            "relevance_level": RELEVANCE_LEVEL,
            "queries": self.queries,
            "judged_queries": self.judged_queries,
            "queries_without_relevant_excluded": self.without_relevant,
            "sampled": self.sampled,
            "corpus_documents": self.corpus_documents,
            "corpus_embeddings": self.embeddings,
            "metrics": {r.mode: r.means for r in self.results},
            "timings_s": {key: round(value, 3) for key, value in self.timings.items()},
            "wall_time_s": round(self.wall_time_s, 3),
            "mpretriever_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        difference = self.difference()
        if difference is not None:
            summary["difference_qdrant_minus_exact"] = difference
        return summary


def output_files(config: EvalConfig) -> list[Path]:
    """The files an evaluation writes into ``config.output``."""
    if config.output is None:
        return []
    names = [METRICS_FILE] + [name for mode in config.modes for name in (run_file(mode), per_query_file(mode))]
    return [config.output / name for name in names]


def check_output(config: EvalConfig) -> None:
    """Refuse, before any work, an output directory that is a file or already holds results (unless
    ``overwrite``)."""

    if config.output is None:
        return
    if config.output.exists() and not config.output.is_dir():
        raise ValueError(f"{config.output} is a file; --output takes a directory")
    existing = [path for path in output_files(config) if path.exists()]
    if existing and not config.overwrite:
        raise OutputExistsError(
            f"{config.output} already holds results ({', '.join(p.name for p in existing)}); pass --overwrite to "
            "replace them, or choose another --output"
        )


def choose_queries(qrels_queries: set[str], max_queries: int | None, seed: int) -> tuple[list[str], bool]:
    """The query ids to evaluate, sorted: all of them, or a seeded random sample of ``max_queries``."""
    chosen = sorted(qrels_queries)
    if max_queries is not None and max_queries < len(chosen):
        return sorted(random.Random(seed).sample(chosen, max_queries)), True
    return chosen, False


def _collection_model(config: EvalConfig) -> dict[str, Any]:
    """The manifest of the collection (which model filled it); checks that the collection exists."""
    from mpretriever.index.collection import read_manifest

    settings = config.qdrant or QdrantSettings()
    client = settings.connect(must_exist=True)
    try:
        if not client.collection_exists(str(config.collection)):
            raise ValueError(f"collection '{config.collection}' does not exist in {settings.location}; run mpr index")
        return read_manifest(client, str(config.collection)) or {}
    finally:
        client.close()


def search_exact(
    config: EvalConfig,
    model: str | None,
    dataset: BeirDataset,
    query_ids: Sequence[str],
    progress: Progress,
    timings: dict[str, float],
    lengths: dict[str, int | None],
) -> tuple[dict[str, list[Hit]], dict[str, Any]]:
    """Encode (or read from the cache) the corpus with ``model`` at ``lengths`` (``query_max_length``,
    ``passage_max_length``; ``None``: the model's maximum) and rank it exactly for ``query_ids``.

    Returns the run and what the report needs to know about the encoder (fingerprint, passage length, whether
    the embeddings came from the cache).
    """
    from mpretriever.model.bi_encoder import BiEncoder
    from mpretriever.search.embeddings import EmbeddingCache
    from mpretriever.search.exact import ExactIndex

    encoder = BiEncoder.from_pretrained(model, backend=config.backend, **lengths)
    corpus = dataset.corpus
    cache = EmbeddingCache(config.cache_dir) if config.cache else None
    started = time.perf_counter()
    task = progress.add_task("encoding corpus", total=len(corpus))
    index = ExactIndex.from_corpus(
        encoder,
        corpus,
        batch_size=config.batch_size,
        workers=config.workers,
        on_progress=lambda done: progress.update(task, advance=done),
        cache=cache,
        chunk_size=PROGRESS_CHUNK,
    )
    timings["corpus_embeddings"] = time.perf_counter() - started
    started = time.perf_counter()
    task = progress.add_task("searching (exact)", total=len(query_ids))
    run: dict[str, list[Hit]] = {}
    with encoder.counting_truncation("query"):
        for start in range(0, len(query_ids), QUERY_BATCH):
            batch = query_ids[start : start + QUERY_BATCH]
            texts = [dataset.queries[query_id] for query_id in batch]
            for query_id, hits in zip(batch, index.search(texts, config.top_k), strict=True):
                run[query_id] = hits
            progress.update(task, advance=len(batch))
    timings["search_exact"] = time.perf_counter() - started
    origin = (
        "encoded (cache off)" if cache is None else ("read from the cache" if cache.hits else "encoded, now cached")
    )
    return run, {
        "fingerprint": encoder.fingerprint(),
        "query_max_length": encoder.config.query_max_length,
        "passage_max_length": encoder.config.passage_max_length,
        "embeddings": origin,
    }


def search_qdrant(
    config: EvalConfig,
    model: str | None,
    queries: dict[str, str],
    query_ids: Sequence[str],
    progress: Progress,
    timings: dict[str, float],
) -> tuple[dict[str, list[Hit]], int, str | None]:
    """Rank ``query_ids`` through the collection with :class:`~mpretriever.haystack.MPRetriever`, which embeds
    each query with ``model`` and refuses a collection indexed with another one. Returns the run, the query
    length used and the collection searched (the one an alias pointed at when the search began)."""
    from haystack.utils import Secret

    from mpretriever.haystack.retriever import MPRetriever

    settings = config.qdrant or QdrantSettings()
    retriever = MPRetriever(
        collection=str(config.collection),
        model=model,
        qdrant_path=settings.path,
        qdrant_url=settings.url,
        api_key=Secret.from_token(settings.api_key) if settings.api_key else None,
        top_k=config.top_k,
        backend=config.backend,
        timeout=settings.timeout,
        query_max_length=config.query_max_length,
        follow_alias_s=None,  # one evaluation, one model: an alias that moves meanwhile is not followed
    )
    run: dict[str, list[Hit]] = {}
    started = time.perf_counter()
    try:
        retriever.warm_up()
        encoder = retriever.encoder
        assert encoder is not None
        task = progress.add_task("searching (Qdrant)", total=len(query_ids))
        with encoder.counting_truncation("query"):
            for query_id in query_ids:
                documents = retriever.run(query=queries[query_id])["documents"]
                run[query_id] = trec_order([(str(d.id), float(d.score or 0.0)) for d in documents])
                progress.update(task, advance=1)
        query_max_length = encoder.config.query_max_length
        served = retriever.served_collection
    finally:
        retriever.close()
    timings["search_qdrant"] = time.perf_counter() - started
    return run, query_max_length, served


def evaluate_retrieval(
    config: EvalConfig,
    console: Console | None = None,
    on_result: Callable[[ModeResult], None] | None = None,
) -> EvalReport:
    """Run ``config``: search the split's queries in each mode, score the runs, save them when asked.

    Only queries with at least one relevant document in the qrels are evaluated (BEIR's convention); the
    report counts the others. Raises ``ValueError`` for a ``top_k`` below a requested cutoff and
    :class:`~mpretriever.files.OutputExistsError` for existing results, before any work.
    """
    started = time.perf_counter()
    measures = parse_measures(config.measures)
    depth = required_depth(measures)
    if config.top_k < depth:
        raise ValueError(f"--top-k {config.top_k} is below the deepest cutoff requested ({depth}); raise --top-k")
    check_output(config)

    dataset = BeirDataset(resolve_dataset(config.data))
    judgements = dataset.qrels(config.split)
    qrels = grades(judgements)
    evaluable = relevant_queries(qrels)
    if not evaluable:
        raise ValueError(f"{dataset.root}: no query of split '{config.split}' has a relevant document")
    query_ids, sampled = choose_queries(evaluable, config.max_queries, config.seed)

    model = config.model
    manifest: dict[str, Any] = {}
    lengths = {"query_max_length": config.query_max_length, "passage_max_length": config.passage_max_length}
    if config.collection is not None:
        from mpretriever.index.collection import search_lengths

        manifest = _collection_model(config)
        lengths = search_lengths(manifest, config.query_max_length)  # exact search as comparable as can be
        model = model or manifest.get("model")
        if model is None:
            raise ValueError(
                f"collection '{config.collection}' records no model (not built by mpr index): pass --model"
            )

    timings: dict[str, float] = {}
    runs: dict[SearchMode, dict[str, list[Hit]]] = {}
    encoder_info: dict[str, Any] = {}
    with ExitStack() as stack:
        progress = stack.enter_context(task_progress(console, config.progress))
        for mode in config.modes:
            if mode == "exact":
                runs[mode], encoder_info = search_exact(config, model, dataset, query_ids, progress, timings, lengths)
            else:
                runs[mode], encoder_info["query_max_length"], encoder_info["served_collection"] = search_qdrant(
                    config, model, dataset.queries, query_ids, progress, timings
                )

    results = []
    for mode, run in runs.items():
        per_query = evaluate_run(qrels, run, measures, queries=query_ids)
        result = ModeResult(mode, run, per_query, mean_values(per_query, measures), timings.get(f"search_{mode}", 0.0))
        results.append(result)
        if on_result is not None:
            on_result(result)

    report = EvalReport(
        model=model or PACKAGED_MODEL,
        fingerprint=encoder_info.get("fingerprint", manifest.get("fingerprint")),
        backend=config.backend,
        passage_max_length=encoder_info.get("passage_max_length", manifest.get("passage_max_length")),
        dataset=dataset.name,
        dataset_path=str(dataset.root.resolve()),
        split=config.split,
        measures=measures,
        top_k=config.top_k,
        queries=len(query_ids),
        judged_queries=len(qrels),
        without_relevant=len(qrels) - len(evaluable),
        sampled=sampled,
        results=results,
        collection=config.collection,
        served_collection=encoder_info.get("served_collection"),
        query_max_length=encoder_info.get("query_max_length"),
        corpus_documents=len(dataset.corpus),
        embeddings=encoder_info.get("embeddings"),
        timings=timings,
        output=config.output,
    )
    report.wall_time_s = time.perf_counter() - started
    if config.output is not None:
        save_report(report, config.output)
    return report


def save_report(report: EvalReport, directory: Path) -> list[Path]:
    """Write each mode's TREC run file and per-query values, and ``metrics.json``, into ``directory``."""
    written = []
    for result in report.results:
        written.append(write_run(directory / run_file(result.mode), result.run, tag=f"mpr-{result.mode}"))
        written.append(save_per_query(directory / per_query_file(result.mode), result.per_query))
    summary = json.dumps(report.summary(), indent=2, ensure_ascii=False) + "\n"
    written.append(write_text_atomically(directory / METRICS_FILE, summary))
    return written
