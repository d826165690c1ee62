"""LLM relevance labels for a dataset split: the library side of ``mpr annotate``.

:func:`annotate` picks the split's queries (all, or a stable seeded sample), builds each one's candidate pool with
the miners of ``mpr mine`` (BM25, exact dense search, or a Qdrant collection: the top ``depth`` passages the split
has not judged, or with ``skip_judged=False`` the top ``depth`` whatever their human judgement, plus with
``include_judged`` every judged one), judges every pair not yet in the journal, and
writes, atomically:

- ``<output>`` (``*.tsv``): the qrels of every judged pair of the pools, grade 0 included, with the source column
  (``mpr train --extra-qrels llm.tsv=llm`` reads it);
- ``<stem>.judgements.jsonl``: per pair the grade, the expected grade and the grade probabilities (or the raw
  reply), the judge's id and the prompt's hash;
- ``<stem>.annotation.json``: the judge's identity, the options, counts, speed and, where the split has human
  judgements of annotated pairs, the agreement (:mod:`mpretriever.annotation.agreement`).

The journal ``<stem>.journal.jsonl`` (:mod:`mpretriever.annotation.journal`) keeps every judgement as it is made:
an interrupted run loses at most one batch, and a re-run judges only what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rich.console import Console

from mpretriever.annotation.agreement import Agreement, agreement
from mpretriever.annotation.journal import Journal, JudgementRecord
from mpretriever.data.beir import BeirDataset, Qrels, passage_texts
from mpretriever.data.resolve import resolve_dataset
from mpretriever.data.sampling import hash_sample
from mpretriever.files import OutputExistsError, atomic_file, write_text_atomically
from mpretriever.index.connection import QdrantSettings
from mpretriever.mining.base import MiningQuery
from mpretriever.mining.run import QUERY_BATCH, MinerOptions, build_miner
from mpretriever.progress import task_progress

logger = logging.getLogger(__name__)

CandidateSource = Literal["bm25", "dense", "collection"]
CANDIDATE_SOURCES: tuple[str, ...] = ("bm25", "dense", "collection")
QRELS_HEADER = "query-id\tcorpus-id\tscore\tsource\n"
JOURNAL_FLUSH = 4  # judge batches per journal write


class Judge(Protocol):
    """What :func:`annotate` needs of a judge (:class:`~mpretriever.annotation.local_judge.LocalLMJudge`)."""

    batch_size: int

    def warm_up(self) -> None: ...

    def identity(self) -> dict[str, Any]: ...

    def judge_id(self) -> str: ...

    def run(self, queries: list[str], passages: list[str]) -> dict[str, Any]: ...


@dataclass
class AnnotateConfig:
    """Every option of an annotation run.

    ``candidates``: ``bm25`` (no model), ``dense`` (exact search with ``model``, default the packaged
    all-MiniLM-L6-v2) or ``collection`` (the Qdrant ``collection`` built by ``mpr index``, in ``qdrant``).
    ``max_queries`` judges a sample: the first N of the split's queries in an order fixed by ``sample_seed``.
    ``judge``/``prompt``/``judge_batch_size``/``passage_max_tokens``/``dtype`` set up the local LM judge
    (default: the packaged SmolLM2-135M-Instruct and the UMBRELA-style prompt). A ``judge`` ending in ``.yml``
    is a Haystack pipeline file whose generator replies with the grade
    (:class:`~mpretriever.annotation.generator_judge.GeneratorJudge`, ``concurrency`` requests at a time,
    ``judge_overrides`` as for ``mpr pipeline run --set``; its prompt is the pipeline's own).
    """

    data: str
    output: Path
    split: str = "train"
    candidates: CandidateSource = "bm25"
    depth: int = 20
    include_judged: bool = False
    skip_judged: bool = True
    max_queries: int | None = None
    sample_seed: int = 0
    model: str | None = None
    collection: str | None = None
    qdrant: QdrantSettings | None = None
    judge: str | None = None
    judge_overrides: dict[str, Any] = field(default_factory=dict)
    prompt: Path | None = None
    judge_batch_size: int = 16
    concurrency: int = 4
    passage_max_tokens: int = 256
    dtype: str = "bfloat16"
    source: str = "llm"
    overwrite: bool = False
    report_only: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        if self.output.suffix != ".tsv":
            raise ValueError(f"{self.output}: the labels are a qrels file: name it *.tsv (e.g. llm.tsv)")
        if self.candidates not in CANDIDATE_SOURCES:
            raise ValueError(f"candidates must be one of {', '.join(CANDIDATE_SOURCES)}, got {self.candidates!r}")
        if (self.candidates == "collection") != (self.collection is not None):
            raise ValueError("--candidates collection and --collection NAME go together")
        if self.candidates == "bm25" and self.model is not None:
            raise ValueError("--model is the dense retriever of --candidates dense; BM25 needs no model")
        if self.depth < 0 or (self.depth == 0 and not self.include_judged):
            raise ValueError(f"depth must be at least 1 (or 0 with --include-judged), got {self.depth}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be at least 1, got {self.max_queries}")
        if self.pipeline_judge:
            if self.prompt is not None:
                raise ValueError("--prompt is for a local judge: a pipeline judge's prompt is its prompt_builder")
        elif self.judge_overrides:
            raise ValueError("--judge-set changes a pipeline judge (--judge FILE.yml)")
        if not self.source or any(character.isspace() for character in self.source):
            raise ValueError(f"source must be a non-empty name without spaces, got {self.source!r}")

    def path(self, kind: str) -> Path:
        """A file beside the output: ``llm.tsv`` -> ``llm.<kind>``."""
        return self.output.with_name(f"{self.output.stem}.{kind}")

    def miner_options(self) -> MinerOptions:
        return MinerOptions(
            method="bm25" if self.candidates == "bm25" else "dense",
            model=self.model,
            collection=self.collection,
            qdrant=self.qdrant,
        )

    @property
    def pipeline_judge(self) -> bool:
        return self.judge is not None and self.judge.endswith((".yml", ".yaml"))

    def build_judge(self) -> Judge:
        from mpretriever.annotation.local_judge import LocalLMJudge

        if self.pipeline_judge:
            from mpretriever.annotation.generator_judge import GeneratorJudge

            return GeneratorJudge(
                pipeline=str(self.judge),
                overrides=self.judge_overrides or None,
                concurrency=self.concurrency,
                batch_size=self.judge_batch_size,
            )

        return LocalLMJudge(
            model=self.judge,
            prompt=str(self.prompt) if self.prompt is not None else None,
            batch_size=self.judge_batch_size,
            passage_max_tokens=self.passage_max_tokens,
            dtype=self.dtype,
        )


@dataclass
class AnnotationOutcome:
    """What :func:`annotate` did: the files written, the pairs of the pools, how many were judged now and how
    many came from the journal, the grades given, the speed and, where humans judged pairs too, the agreement."""

    output: Path
    queries: int
    pairs: int
    judged_now: int
    reused: int
    grades: dict[int, int]
    seconds: float
    agreement: Agreement | None = None
    unjudged: int = 0
    files: list[Path] = field(default_factory=list)

    @property
    def judgements_per_s(self) -> float:
        return self.judged_now / self.seconds if self.seconds > 0 else 0.0


def sample_queries(query_ids: Iterable[str], count: int | None, seed: int = 0) -> list[str]:
    """``count`` of ``query_ids`` (all when ``None``) chosen by a hash of the seed and the id: the same ones on
    every machine, and a chosen query stays chosen when others are added. Returned sorted."""
    ids = sorted(set(query_ids))
    return ids if count is None else hash_sample(ids, count, salt=f"{seed}:")


def candidate_pools(
    config: AnnotateConfig,
    dataset: BeirDataset,
    human: Qrels,
    query_ids: Sequence[str],
    progress: Any,
    stack: ExitStack,
) -> dict[str, list[str]]:
    """Each query's pool: its top ``depth`` passages, best first (only those the split has not judged, unless
    ``skip_judged`` is off), then (with ``include_judged``) its judged passages not already in the pool."""
    pools: dict[str, list[str]] = {query_id: [] for query_id in query_ids}
    if config.depth > 0:
        miner = build_miner(config.miner_options(), dataset, progress, stack)
        queries = [
            MiningQuery(
                query_id,
                dataset.queries[query_id],
                (),
                frozenset(human.get(query_id, {})) if config.skip_judged else frozenset(),
            )
            for query_id in query_ids
        ]
        task = progress.add_task(f"candidates ({miner.name})", total=len(queries))
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start : start + QUERY_BATCH]
            for query, ranking in zip(batch, miner.rank(batch, config.depth), strict=True):
                pools[query.query_id] = [c.doc_id for c in ranking.candidates if c.doc_id in dataset.doc_index]
            progress.update(task, advance=len(batch))
    if config.include_judged:
        for query_id in query_ids:
            ranked = set(pools[query_id])
            pools[query_id] += sorted(set(human.get(query_id, {})) - ranked)
    return pools


def _passages(dataset: BeirDataset, doc_ids: Sequence[str]) -> list[str]:
    return passage_texts(dataset.corpus.select([dataset.doc_index[doc_id] for doc_id in doc_ids]))


def _records(
    judge_id: str, prompt: str, pairs: Sequence[tuple[str, str]], result: dict[str, Any]
) -> list[JudgementRecord]:
    grades = result["grades"]
    scores = result.get("scores") or [None] * len(pairs)
    probabilities = result.get("probabilities") or [None] * len(pairs)
    replies = result.get("replies") or [None] * len(pairs)
    return [
        JudgementRecord(
            query_id=query_id,
            doc_id=doc_id,
            judge=judge_id,
            prompt=prompt,
            grade=grade,
            score=None if score is None else round(float(score), 6),
            probabilities=None if probability is None else [round(float(p), 6) for p in probability],
            reply=reply,
        )
        for (query_id, doc_id), grade, score, probability, reply in zip(
            pairs, grades, scores, probabilities, replies, strict=True
        )
    ]


def judge_pairs(
    judge: Judge,
    journal: Journal,
    dataset: BeirDataset,
    pairs: Sequence[tuple[str, str]],
    judge_id: str,
    prompt: str,
    on_progress: Any = None,
) -> int:
    """Judge ``pairs`` (missing from the journal) and append each group of batches to it, under ``judge_id`` and
    the ``prompt`` hash, as it finishes."""
    chunk = judge.batch_size * JOURNAL_FLUSH
    judged = 0
    for start in range(0, len(pairs), chunk):
        batch = list(pairs[start : start + chunk])
        queries = [dataset.queries[query_id] for query_id, _ in batch]
        passages = _passages(dataset, [doc_id for _, doc_id in batch])
        result = judge.run(queries=queries, passages=passages)
        judged += journal.append(_records(judge_id, prompt, batch, result))
        if on_progress is not None:
            on_progress(len(batch))
    return judged


def write_labels(
    config: AnnotateConfig, pools: dict[str, list[str]], judged: dict[tuple[str, str], JudgementRecord]
) -> list[Path]:
    """The qrels TSV (every judged pair of the pools, unjudged ones left out) and the per-pair sidecar."""
    pairs = [
        (query_id, doc_id) for query_id in sorted(pools) for doc_id in pools[query_id] if (query_id, doc_id) in judged
    ]
    with atomic_file(config.output) as handle:
        handle.write(QRELS_HEADER)
        for pair in pairs:
            record = judged[pair]
            if record.grade is not None:
                handle.write(f"{pair[0]}\t{pair[1]}\t{record.grade}\t{config.source}\n")
    sidecar = config.path("judgements.jsonl")
    with atomic_file(sidecar) as handle:
        for pair in pairs:
            handle.write(judged[pair].to_json() + "\n")
    return [config.output, sidecar]


def check_outputs(config: AnnotateConfig) -> None:
    """Refuse, before any work, to replace earlier labels unless ``overwrite`` (the journal is kept: it is what
    a re-run reuses)."""
    if config.report_only or config.overwrite:
        return
    for path in (config.output, config.path("judgements.jsonl"), config.path("annotation.json")):
        if path.exists():
            raise OutputExistsError(
                f"{path} already exists; pass --overwrite to replace it (judgements in {config.path('journal.jsonl')} "
                "are reused, not redone), or choose another --output"
            )


def annotate(config: AnnotateConfig, console: Console | None = None, judge: Judge | None = None) -> AnnotationOutcome:
    """Judge the candidate pools of ``config.split`` and write the labels (see the module docstring).

    ``judge`` replaces the one ``config`` describes (any object with the :class:`Judge` methods)."""
    check_outputs(config)
    started = time.perf_counter()
    dataset = BeirDataset(resolve_dataset(config.data))
    human = dataset.qrels(config.split)
    query_ids = sample_queries([q for q in human if q in dataset.queries], config.max_queries, config.sample_seed)
    judge = judge or config.build_judge()
    judge.warm_up()
    identity = judge.identity()
    judge_id, prompt = judge.judge_id(), identity.get("prompt_sha256", "")
    journal = Journal(config.path("journal.jsonl"))
    with ExitStack() as stack:
        progress = stack.enter_context(task_progress(console, config.progress, rate_unit="judgements"))
        if config.report_only:
            known = journal.of(judge_id, prompt)
            pools = {query_id: [] for query_id in query_ids}
            for query_id, doc_id in known:
                if query_id in pools:
                    pools[query_id].append(doc_id)
        else:
            pools = candidate_pools(config, dataset, human, query_ids, progress, stack)
        pairs = [(query_id, doc_id) for query_id in query_ids for doc_id in pools[query_id]]
        done = journal.of(judge_id, prompt)
        missing = [] if config.report_only else [pair for pair in pairs if pair not in done]
        judging_started = time.perf_counter()
        judged_now = 0
        if missing:
            task = progress.add_task("judging", total=len(missing))
            stack.enter_context(journal)
            judged_now = judge_pairs(
                judge,
                journal,
                dataset,
                missing,
                judge_id,
                prompt,
                on_progress=lambda count: progress.update(task, advance=count),
            )
        judging_s = time.perf_counter() - judging_started
    judged = journal.of(judge_id, prompt)
    in_pools = {pair: judged[pair] for pair in pairs if pair in judged}
    llm_grades = {pair: record.grade for pair, record in in_pools.items() if record.grade is not None}
    files: list[Path] = []
    if not config.report_only:
        files = write_labels(config, pools, judged)
    report = agreement(human, llm_grades) if any(doc in human.get(q, {}) for q, doc in llm_grades) else None
    outcome = AnnotationOutcome(
        output=config.output,
        queries=len(query_ids),
        pairs=len(pairs),
        judged_now=judged_now,
        reused=len(in_pools) - judged_now,
        grades=dict(sorted(Counter(llm_grades.values()).items())),
        seconds=judging_s,
        agreement=report,
        unjudged=len(pairs) - len(llm_grades),
        files=files,
    )
    summary_path = config.path("annotation.json")
    summary = _summary(config, identity, judge_id, outcome, started)
    if config.report_only and summary_path.is_file():
        # the run's own record (options, counts, speed) stays: only its agreement is recomputed
        summary = {**json.loads(summary_path.read_text(encoding="utf-8")), "agreement": summary["agreement"]}
    write_text_atomically(summary_path, json.dumps(summary, indent=2) + "\n")
    outcome.files.append(summary_path)
    return outcome


def _summary(
    config: AnnotateConfig, identity: dict[str, Any], judge_id: str, outcome: AnnotationOutcome, started: float
) -> dict[str, Any]:
    options = {
        name: (str(value) if isinstance(value, Path) else value)
        for name, value in asdict(config).items()
        if name not in ("qdrant", "progress", "overwrite")
    }
    return {
        "options": options,
        "judge": {"id": judge_id, **identity},
        "queries": outcome.queries,
        "pairs": outcome.pairs,
        "judged_now": outcome.judged_now,
        "reused_from_journal": outcome.reused,
        "unjudged": outcome.unjudged,
        "grades": {str(grade): count for grade, count in outcome.grades.items()},
        "judging_s": round(outcome.seconds, 2),
        "judgements_per_s": round(outcome.judgements_per_s, 3),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "agreement": outcome.agreement.to_dict() if outcome.agreement is not None else None,
    }
