"""The dev set a training run selects its best checkpoint on, and the retrieval evaluation run on it.

A dev set is either a qrels split of the dataset (``--eval-split dev``) or training queries held out by a stable
hash of their ids (``--dev-queries N``, for datasets without a dev split), which training then never sees. Its
corpus is the whole corpus, or, for corpora too large to encode every few steps, a fixed pool built once: every
passage judged for a dev query plus each dev query's BM25 top ``pool_depth``. The pool depends only on the data
and the dev queries, so the figures of two runs on the same dev set are comparable; they are not comparable to
figures on the full corpus (a pool is easier), and every report says which corpus they are on.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from mpretriever.data.beir import BeirDataset
from mpretriever.data.sampling import hash_sample
from mpretriever.evaluation.metrics import DEFAULT_MEASURES, Measure, evaluate_run, mean_values, parse_measures
from mpretriever.evaluation.significance import load_per_query, save_per_query
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.search.embeddings import EmbeddingCache
from mpretriever.search.exact import ExactIndex

logger = logging.getLogger(__name__)

DevCorpus = Literal["auto", "full", "pool"]
FULL_CORPUS_LIMIT = 20_000  # "auto" evaluates on the full corpus up to this many passages, else on a pool
DEFAULT_POOL_DEPTH = 100
TOP_K = 100
DEV_PER_QUERY_DIR = "dev-per-query"
"""The run directory's folder of each dev evaluation's per-query values (``step-N.json``)."""


def held_out_queries(query_ids: Iterable[str], count: int) -> list[str]:
    """``count`` query ids chosen by a stable hash of the ids alone: the same ones for every seed, option and
    machine, and a query stays held out when others are added to the data."""
    if count < 1:
        raise ValueError(f"the number of held-out dev queries must be at least 1, got {count}")
    return hash_sample(query_ids, count)


@dataclass(frozen=True)
class DevSet:
    """Dev queries, their graded judgements, and the corpus rows they are evaluated against (``rows=None``: the
    whole corpus). ``source`` says where the queries come from (``"split dev"``, ``"held out of train"``)."""

    dataset: str
    source: str
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    corpus_size: int
    rows: tuple[int, ...] | None = None
    pool_depth: int | None = None

    @property
    def corpus_kind(self) -> str:
        return "full" if self.rows is None else "pool"

    @property
    def passages(self) -> int:
        return self.corpus_size if self.rows is None else len(self.rows)

    def describe(self) -> dict[str, Any]:
        """What the dev figures are measured on (recorded in the run's manifest)."""
        description: dict[str, Any] = {
            "dataset": self.dataset,
            "queries_from": self.source,
            "queries": len(self.queries),
            "corpus": self.corpus_kind,
            "passages": self.passages,
            "corpus_passages": self.corpus_size,
        }
        if self.rows is not None:
            digest = hashlib.sha1(",".join(map(str, self.rows)).encode("ascii")).hexdigest()[:16]
            description.update(pool_depth=self.pool_depth, pool_fingerprint=digest)
        return description

    def headline(self) -> str:
        """One line for logs and reports: ``324 queries of nfcorpus split dev, full corpus (3,633 passages)``."""
        corpus = (
            f"full corpus ({self.passages:,} passages)"
            if self.rows is None
            else f"sub-corpus of {self.passages:,} of {self.corpus_size:,} passages (judged + BM25 top "
            f"{self.pool_depth}; figures not comparable to full-corpus ones)"
        )
        return f"{len(self.queries):,} queries of {self.dataset} {self.source}, {corpus}"


def build_dev_set(
    dataset: BeirDataset,
    qrels: Mapping[str, Mapping[str, int]],
    source: str,
    corpus: DevCorpus = "auto",
    pool_depth: int = DEFAULT_POOL_DEPTH,
) -> DevSet:
    """The dev set of ``qrels`` (query id -> doc id -> grade; queries without a relevant passage are left out, as
    evaluation leaves them out). ``corpus``: ``"full"``, ``"pool"`` or ``"auto"`` (full up to
    :data:`FULL_CORPUS_LIMIT` passages)."""
    if corpus not in ("auto", "full", "pool"):
        raise ValueError(f"dev corpus must be auto, full or pool, got {corpus!r}")
    if pool_depth < 1:
        raise ValueError(f"the dev pool depth must be at least 1, got {pool_depth}")
    judged = {
        query_id: dict(grades)
        for query_id, grades in qrels.items()
        if query_id in dataset.queries and any(grade >= 1 for grade in grades.values())
    }
    if not judged:
        raise ValueError(f"{dataset.root}: the dev queries ({source}) have no relevant passage to evaluate on")
    queries = {query_id: dataset.queries[query_id] for query_id in sorted(judged)}
    size = len(dataset.corpus)
    if corpus == "full" or (corpus == "auto" and size <= FULL_CORPUS_LIMIT):
        return DevSet(dataset.name, source, queries, judged, size)
    rows = _pool_rows(dataset, queries, judged, pool_depth)
    return DevSet(dataset.name, source, queries, judged, size, rows, pool_depth)


def _pool_rows(
    dataset: BeirDataset, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], depth: int
) -> tuple[int, ...]:
    from mpretriever.mining.base import MiningQuery
    from mpretriever.mining.bm25 import BM25Miner

    started = time.perf_counter()
    miner = BM25Miner.from_corpus(dataset.corpus)
    requests = [MiningQuery(query_id, text, (), frozenset()) for query_id, text in queries.items()]
    pooled = {doc_id for grades in qrels.values() for doc_id in grades}
    for ranking in miner.rank(requests, depth):
        pooled.update(candidate.doc_id for candidate in ranking.candidates)
    doc_index = dataset.doc_index
    rows = tuple(sorted(doc_index[doc_id] for doc_id in pooled if doc_id in doc_index))
    seconds = time.perf_counter() - started
    logger.info("dev pool: %d passages (judged + BM25 top %d) in %.1f s", len(rows), depth, seconds)
    return rows


class DevEvaluator:
    """Ranks the dev set's corpus for every dev query by exact search and scores the rankings with trec_eval.

    Passages and queries are embedded at the lengths the saved model is loaded with (queries up to the model's
    maximum sequence length, passages at the training passage length), so a saved run's figure is what ``mpr eval``
    reports for it on the same corpus, and the vectors of the kept step are the ones an index of it holds.
    """

    def __init__(
        self,
        dev_set: DevSet,
        corpus: datasets.Dataset,
        measures: Sequence[str] = DEFAULT_MEASURES,
        batch_size: int = 64,
        record_directory: Path | None = None,
    ) -> None:
        self.dev_set = dev_set
        self.queries = list(dev_set.queries)  # the Trainer's eval_dataset
        self.corpus = corpus if dev_set.rows is None else corpus.select(dev_set.rows)
        self.measures: list[Measure] = parse_measures(measures)
        self.batch_size = batch_size
        self.top_k = max(TOP_K, *(measure.depth or 0 for measure in self.measures))
        self.per_query: dict[int, dict[str, dict[str, float]]] = {}
        """The per-query values of each evaluation given a ``step``, for the paired test of a step against the
        start (:meth:`~mpretriever.training.dev_curve.DevCurve.compared_with_start`)."""
        self.record_directory = record_directory
        """Where each step's per-query values are also written (``step-N.json``), so that a resumed run can still
        test its saved step against the start that an earlier process evaluated, and a user can test two steps."""

    @property
    def labels(self) -> list[str]:
        return [measure.label for measure in self.measures]

    def __call__(
        self,
        encoder: BiEncoder,
        cache: EmbeddingCache | None = None,
        step: int | None = None,
        passage_max_length: int | None = None,
    ) -> dict[str, float]:
        """The mean of every measure over the dev queries, for the encoder as it is now. With a ``cache``, corpus
        embeddings of the same weights computed before (by ``mpr eval`` or an earlier run) are read, not encoded.
        With a ``step``, the per-query values are kept in :attr:`per_query`. ``passage_max_length`` replaces the
        length the saved model will read passages at (the starting model is evaluated at its own)."""
        with encoder.inference_lengths(passage_max_length):
            index = ExactIndex.from_corpus(encoder, self.corpus, batch_size=self.batch_size, cache=cache)
            hits = index.search([self.dev_set.queries[query_id] for query_id in self.queries], self.top_k)
        run = dict(zip(self.queries, hits, strict=True))
        per_query = evaluate_run(self.dev_set.qrels, run, self.measures, queries=self.queries)
        if step is not None:
            self.per_query[step] = per_query
            if self.record_directory is not None:
                self.record_directory.mkdir(parents=True, exist_ok=True)
                save_per_query(self.record_directory / f"step-{step}.json", per_query)
        return mean_values(per_query, self.measures)

    def load_recorded(self, resumed_step: int) -> None:
        """Read the per-query values that an interrupted run recorded up to ``resumed_step`` (the checkpoint it
        resumes from) into :attr:`per_query`. Records of later steps are deleted: the resumed run evaluates those
        steps again, and a record it does not reach would describe weights that no longer exist."""
        if self.record_directory is None or not self.record_directory.is_dir():
            return
        for path in sorted(self.record_directory.glob("step-*.json")):
            step_text = path.stem.removeprefix("step-")
            if not step_text.isdigit():
                continue
            step = int(step_text)
            if step > resumed_step:
                path.unlink()
                continue
            try:
                self.per_query[step] = load_per_query(path)
            except (OSError, ValueError) as error:
                logger.warning("%s: unreadable (%s); the paired test against the start may be missing", path, error)


class TrainedStepEmbeddings:
    """The dev corpus embeddings of the best trained step a run has evaluated so far, in a temporary directory
    inside the embedding cache (``cache``, default ``$MPR_CACHE_DIR/embeddings``). At the end :meth:`keep` moves the
    saved model's into the cache, so that indexing or evaluating it on the same corpus reads them instead of
    encoding the corpus again; the directory goes with :meth:`close` (or with the object)."""

    def __init__(self, cache: EmbeddingCache | None = None) -> None:
        self.cache = cache or EmbeddingCache()
        self.cache.directory.mkdir(parents=True, exist_ok=True)
        self._directory = tempfile.TemporaryDirectory(prefix=".trained-steps-", dir=self.cache.directory)
        self.steps = EmbeddingCache(self._directory.name)
        self._best: tuple[Path, float] | None = None

    def record(self, value: float, greater_is_better: bool = True, latest: bool = False) -> None:
        """After a trained step's evaluation (whose embeddings :attr:`steps` now holds) scored ``value``: keep them
        if the step is the best trained one so far (strictly better, as the Trainer's best checkpoint), or with
        ``latest`` (a run that saves its last step) always, and delete the others, so that the directory never
        holds more than one step's."""
        new = [path for path in Path(self._directory.name).glob("*.npy") if self._best is None or path != self._best[0]]
        if not new:
            return
        better = latest or self._best is None or (value > self._best[1] if greater_is_better else value < self._best[1])
        for path in ([self._best[0]] if better and self._best is not None else []) + ([] if better else new):
            path.with_suffix(".json").unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        if better:
            self._best = (new[0], value)

    def keep(self, encoder: BiEncoder, corpus: datasets.Dataset) -> bool:
        """Move the embeddings of ``corpus`` under ``encoder`` (at the lengths the dev evaluation embeds with) into
        the cache; ``False`` when no evaluated step had these weights (the last step saved without an evaluation,
        or the starting model, whose embeddings the cache already holds)."""
        with encoder.inference_lengths():
            key = EmbeddingCache.key(EmbeddingCache.describe(encoder, corpus))
        kept = self.cache.take(self.steps, key)
        if kept:
            logger.info("the saved model's dev corpus embeddings are in the embedding cache (%s)", self.cache.path(key))
        return kept

    def close(self) -> None:
        self._directory.cleanup()
