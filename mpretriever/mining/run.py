"""Mining hard negatives for a dataset split: the library side of ``mpr mine``.

:func:`mine` reads the dataset, builds the miner (BM25, exact dense search, or a Qdrant collection), ranks every
query of the split that has a positive, keeps the candidates :func:`~mpretriever.mining.selection.select_negatives`
allows and writes them with :func:`~mpretriever.mining.output.write_negatives`. :func:`mine_queries` is the loop
alone, for any :class:`~mpretriever.mining.base.Miner`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import Progress

from mpretriever.data.beir import BeirDataset, Qrels, load_qrels
from mpretriever.data.errors import DataFormatError
from mpretriever.data.examples import merge_qrels, strongest_judgements
from mpretriever.data.resolve import resolve_dataset
from mpretriever.index.connection import QdrantSettings
from mpretriever.mining.base import Miner, MiningQuery
from mpretriever.mining.output import MinedQuery, check_output, write_negatives
from mpretriever.mining.selection import SelectionConfig, mining_queries, select_negatives
from mpretriever.model.backends import Backend
from mpretriever.progress import task_progress

logger = logging.getLogger(__name__)

Method = Literal["bm25", "dense"]
METHODS: tuple[str, ...] = ("bm25", "dense")
QUERY_BATCH = 256


@dataclass
class MineConfig:
    """Every option of a mining run.

    ``method="dense"`` searches the corpus exactly with ``model`` (default: the packaged all-MiniLM-L6-v2), or,
    when ``collection`` is given, the Qdrant collection ``mpr index`` built in ``qdrant`` (default: the local
    ``qdrant_data`` directory); ``model`` then defaults to the one the collection records. ``extra_qrels``
    (``PATH[=SOURCE]``, as for ``mpr train --extra-qrels``) add positives; with ``other_splits`` the documents
    labelled relevant in every other split of the dataset are excluded too. ``query_max_length`` /
    ``passage_max_length`` cut the texts the model embeds (default: the model's maximum; with a collection, its
    passage length and, unless given, its query length).
    """

    data: str
    output: Path
    split: str = "train"
    method: Method = "bm25"
    model: str | None = None
    collection: str | None = None
    qdrant: QdrantSettings | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    extra_qrels: list[str] = field(default_factory=list)
    other_splits: bool = True
    max_queries: int | None = None
    batch_size: int = 64
    workers: int | None = None
    backend: Backend = "torch"
    query_max_length: int | None = None
    passage_max_length: int | None = None
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "bm25" and (self.model is not None or self.collection is not None):
            raise ValueError("--model and --collection are for --method dense; BM25 needs no model")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be at least 1, got {self.max_queries}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.passage_max_length is not None and self.collection is not None:
            raise ValueError("--passage-max-length is for encoding the corpus: a collection's passages are embedded")

    def miner_options(self) -> MinerOptions:
        return MinerOptions(**{name: getattr(self, name) for name in MinerOptions.__dataclass_fields__})


@dataclass(frozen=True)
class MinerOptions:
    """What builds a miner (see :class:`MineConfig` for each option): :func:`build_miner` reads nothing else, so
    ``mpr annotate`` ranks its candidate pools with the same miners as ``mpr mine``."""

    method: Method = "bm25"
    model: str | None = None
    collection: str | None = None
    qdrant: QdrantSettings | None = None
    batch_size: int = 64
    workers: int | None = None
    backend: Backend = "torch"
    query_max_length: int | None = None
    passage_max_length: int | None = None


@dataclass
class MiningStats:
    """Counts over a mining run."""

    queries: int = 0
    with_negatives: int = 0
    negatives: int = 0
    fewest: int | None = None
    most: int = 0
    in_window: int = 0
    dropped_by_margin: int = 0
    unknown_candidates: int = 0

    @property
    def without_negatives(self) -> int:
        return self.queries - self.with_negatives

    @property
    def mean_negatives(self) -> float:
        return self.negatives / self.queries if self.queries else 0.0

    def add(self, count: int, in_window: int, dropped_by_margin: int) -> None:
        self.queries += 1
        self.with_negatives += count > 0
        self.negatives += count
        self.fewest = count if self.fewest is None else min(self.fewest, count)
        self.most = max(self.most, count)
        self.in_window += in_window
        self.dropped_by_margin += dropped_by_margin


@dataclass
class MiningOutcome:
    """What :func:`mine` did: the file written, the miner and selection used, the counts, the splits excluded
    and the judged queries not mined for want of a positive."""

    output: Path
    method: str
    selection: SelectionConfig
    stats: MiningStats
    excluded_splits: list[str]
    skipped_queries: int


def mine_queries(
    miner: Miner,
    queries: Sequence[MiningQuery],
    selection: SelectionConfig,
    known_docs: Container[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = QUERY_BATCH,
) -> tuple[list[MinedQuery], MiningStats]:
    """Rank ``queries`` with ``miner`` in batches and select each one's negatives; ``known_docs`` (the dataset's
    document ids) drops candidates the dataset does not hold, e.g. from a collection of another corpus."""
    mined: list[MinedQuery] = []
    stats = MiningStats()
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        for query, ranking in zip(batch, miner.rank(batch, selection.depth), strict=True):
            candidates = ranking.candidates
            if known_docs is not None:
                candidates = tuple(c for c in candidates if c.doc_id in known_docs)
                stats.unknown_candidates += len(ranking.candidates) - len(candidates)
            chosen = select_negatives(candidates, query.excluded, ranking.positive_scores, selection)
            mined.append(MinedQuery(query.query_id, chosen.negatives))
            stats.add(len(chosen.negatives), chosen.in_window, chosen.dropped_by_margin)
        if on_progress is not None:
            on_progress(len(batch))
    if stats.unknown_candidates:
        logger.warning("ignored %d candidates whose document is not in the dataset", stats.unknown_candidates)
    return mined, stats


def _load_qrels(config: MineConfig, dataset: BeirDataset) -> tuple[Qrels, list[Qrels], list[str]]:
    """The mined split's qrels merged with the extra qrels, and the other splits' qrels (with their names)."""
    qrels = [dataset.qrels(config.split)]
    for spec in config.extra_qrels:
        path, _, source = spec.partition("=")
        qrels.append(load_qrels(Path(path), dataset.queries, dataset.doc_index, default_source=source or "llm"))
    others: list[Qrels] = []
    names: list[str] = []
    if config.other_splits:
        for split in dataset.available_splits():
            if split == config.split:
                continue
            try:
                others.append(dataset.qrels(split))
                names.append(split)
            except DataFormatError as error:
                logger.warning("not excluding the labels of split '%s': %s", split, error)
    return strongest_judgements(merge_qrels(qrels)), others, names


def build_miner(config: MinerOptions, dataset: BeirDataset, progress: Progress, stack: ExitStack) -> Miner:
    """The miner ``config`` asks for over ``dataset``'s corpus, with its set-up shown in ``progress``; a Qdrant
    client it opens is closed by ``stack``."""
    corpus = dataset.corpus
    if config.method == "bm25":
        from mpretriever.mining.bm25 import BM25Miner

        task = progress.add_task("indexing BM25", total=len(corpus))
        miner = BM25Miner.from_corpus(corpus)
        progress.update(task, completed=len(corpus))
        return miner

    from mpretriever.mining.dense import DenseMiner, QdrantMiner
    from mpretriever.model.bi_encoder import BiEncoder

    if config.collection is None:
        encoder = BiEncoder.from_pretrained(
            config.model,
            backend=config.backend,
            query_max_length=config.query_max_length,
            passage_max_length=config.passage_max_length,
        )
        task = progress.add_task("encoding corpus", total=len(corpus))
        return DenseMiner.from_corpus(
            encoder,
            corpus,
            batch_size=config.batch_size,
            workers=config.workers,
            on_progress=lambda done: progress.update(task, advance=done),
        )

    from mpretriever.index.collection import check_compatible, collection_manifest, read_manifest, search_lengths

    settings = config.qdrant or QdrantSettings()
    client = settings.connect(must_exist=True)
    stack.callback(client.close)
    if not client.collection_exists(config.collection):
        raise ValueError(f"collection '{config.collection}' does not exist in {settings.location}; run mpr index")
    stored = read_manifest(client, config.collection)
    model = config.model or (stored or {}).get("model")
    if model is None:
        raise ValueError(f"collection '{config.collection}' records no model (not built by mpr index): pass --model")
    lengths = search_lengths(stored, config.query_max_length)
    encoder = BiEncoder.from_pretrained(model, backend=config.backend, **lengths)
    check_compatible(client, config.collection, collection_manifest(encoder, model))
    return QdrantMiner(client, config.collection, encoder, batch_size=config.batch_size)


def mine(config: MineConfig, console: Console | None = None) -> MiningOutcome:
    """Mine hard negatives for every query of ``config.split`` that has a positive and write them to
    ``config.output``. Refuses, before any work, an output that exists unless ``config.overwrite``."""
    check_output(config.output, config.overwrite)
    dataset = BeirDataset(resolve_dataset(config.data))
    qrels, others, other_names = _load_qrels(config, dataset)
    queries = mining_queries(dataset.queries, qrels, others)
    if not queries:
        raise ValueError(f"{dataset.root}: no query of split '{config.split}' has a positive to mine against")
    skipped = len(qrels) - len(queries)
    if config.max_queries is not None:
        queries = queries[: config.max_queries]
    with ExitStack() as stack:
        progress = stack.enter_context(task_progress(console, config.progress))
        miner = build_miner(config.miner_options(), dataset, progress, stack)
        task = progress.add_task(f"mining ({miner.name})", total=len(queries))
        mined, stats = mine_queries(
            miner,
            queries,
            config.selection,
            known_docs=dataset.doc_index,
            on_progress=lambda done: progress.update(task, advance=done),
        )
    write_negatives(config.output, mined, overwrite=config.overwrite)
    return MiningOutcome(
        output=config.output,
        method=miner.name,
        selection=config.selection,
        stats=stats,
        excluded_splits=other_names,
        skipped_queries=skipped,
    )
