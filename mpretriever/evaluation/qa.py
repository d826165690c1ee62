"""End-to-end QA evaluation: DPR answer recall@k of a retrieval run, and the RAG reader's EM / F1 next to an oracle.

:func:`evaluate_qa` runs :func:`~mpretriever.evaluation.retrieval.evaluate_retrieval` (exact search and/or the
Haystack :class:`~mpretriever.haystack.MPRetriever` over a collection), then, for the evaluated questions that
have gold answers (``metadata.answers`` in ``queries.jsonl``):

* **answer recall@k** (DPR's "top-k accuracy"): the share of questions with an answer string (by
  :func:`~mpretriever.evaluation.answers.has_answer`) in one of their top k retrieved passages, on all of them;
* **reader EM / F1** (SQuAD measures, max over the gold answers) of the replies the RAG pipeline's prompt and
  generator (``pipelines/rag.yml``: one-shot prompt, offline SmolLM2 ``LocalGGUFGenerator``) give from the
  top ``reader_k`` retrieved passages, on a seeded random sample of ``sample`` questions (``random.Random(seed)``
  over the sorted ids, as ``--max-queries`` samples);
* **oracle EM / F1**: the same prompt and generator fed the gold passage (qrels ``oracle_split``, default
  ``gold.tsv``) instead, so the gap shows retrieval's share of the QA error.

The pipeline is ``pipelines/rag.yml`` built with :func:`~mpretriever.pipelines.load_pipeline` minus its retriever
(its passages come from the evaluated run, looked up in the dataset's corpus as the collection stores them:
content = text, meta title). Its template shows ``documents[0]``; with ``reader_k > 1`` the template's passage
line holds the ``reader_k`` passages joined by a space (same one-shot format).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from mpretriever.data.beir import BeirDataset
from mpretriever.data.resolve import resolve_dataset
from mpretriever.evaluation.answers import AnswerMatcher, read_answers, squad_score, usable_answers
from mpretriever.evaluation.retrieval import EvalConfig, EvalReport, evaluate_retrieval
from mpretriever.evaluation.runs import Run
from mpretriever.files import OutputExistsError, write_text_atomically
from mpretriever.progress import task_progress
from mpretriever.search.ranking import trec_order

DEFAULT_PIPELINE = "rag.yml"  # a file of the project's pipelines/ (see mpretriever.pipelines.pipeline_file)
RECALL_KS: tuple[int, ...] = (1, 5, 20, 100)
QA_METRICS_FILE = "qa-metrics.json"
QA_PREDICTIONS_FILE = "qa-predictions.json"
SINGLE_PASSAGE = "{{ documents[0].content if documents else '' }}"
JOINED_PASSAGES = "{{ documents | map(attribute='content') | join(' ') }}"


class NoAnswersError(ValueError):
    """The dataset's queries carry no gold answers (``metadata.answers``)."""


@dataclass
class QAConfig:
    """The QA part of an evaluation (the retrieval part is an :class:`EvalConfig`).

    ``recall_ks``: cutoffs of answer recall (the retrieval ``top_k`` is raised to the deepest). ``sample``:
    questions read by the generator (seeded by ``seed``; ``0`` skips the reader). ``reader_k``: retrieved
    passages in the prompt. ``oracle_split``: qrels of the gold passage fed to the oracle run (``None``: no
    oracle). ``pipeline``: the RAG pipeline YAML whose prompt builder and generator are used (by default the
    project's ``pipelines/rag.yml``).
    """

    recall_ks: Sequence[int] = RECALL_KS
    sample: int = 100
    seed: int = 0
    reader_k: int = 3
    oracle_split: str | None = "gold"
    pipeline: Path | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        if not self.recall_ks or min(self.recall_ks) < 1:
            raise ValueError(f"answer recall cutoffs must be at least 1, got {list(self.recall_ks)}")
        if self.sample < 0:
            raise ValueError(f"sample must be at least 0, got {self.sample}")
        if self.reader_k < 1:
            raise ValueError(f"reader_k must be at least 1, got {self.reader_k}")
        self.pipeline = Path(self.pipeline) if self.pipeline is not None else None


@dataclass
class QAReport:
    """What :func:`evaluate_qa` measured: answer recall on ``answered`` questions, reader EM / F1 on the sample."""

    retrieval: EvalReport
    mode: str
    answered: int
    recall: dict[str, float]
    sample: list[str]
    reader: dict[str, float] = field(default_factory=dict)
    oracle: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    reader_k: int = 3
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The content of ``qa-metrics.json``."""
        return {
            "dataset": self.retrieval.dataset,
            "split": self.retrieval.split,
            "model": self.retrieval.model,
            "search_mode": self.mode,
            "answered_questions": self.answered,
            "answer_recall": self.recall,
            "reader_sample": len(self.sample),
            "reader_sample_seed": self.seed,
            "reader_k": self.reader_k,
            "reader": self.reader,
            "oracle": self.oracle,
            "timings_s": {key: round(value, 3) for key, value in self.timings.items()},
            "wall_time_s": round(self.wall_time_s, 3),
        }


def answer_recall(
    run: Run,
    answers: Mapping[str, Sequence[str]],
    passages: Mapping[str, str],
    ks: Sequence[int] = RECALL_KS,
    matcher: AnswerMatcher | None = None,
) -> tuple[dict[str, float], dict[str, int | None]]:
    """DPR top-k answer accuracy of ``run`` for the queries of ``answers``: the mean over them of 1 when one of
    the query's top k hits (``trec_eval`` order) contains an answer. Returns the means (``AnswerRecall@k``) and
    each query's rank of its first answer-bearing hit (``None`` when none has one)."""
    matcher = matcher or AnswerMatcher()
    if not answers:
        raise ValueError("no question with an answer to evaluate")
    depth = max(ks)
    first: dict[str, int | None] = {}
    for query_id, gold in answers.items():
        first[query_id] = None
        for rank, (doc_id, _) in enumerate(trec_order(run.get(query_id, []))[:depth], start=1):
            if matcher.has_answer(passages[doc_id], gold, key=doc_id):
                first[query_id] = rank
                break
    means = {f"AnswerRecall@{k}": sum(1 for r in first.values() if r is not None and r <= k) / len(first) for k in ks}
    return means, first


def sample_questions(query_ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A seeded random sample of ``size`` ids (all of them when fewer), sorted: ``random.Random(seed).sample``
    over the sorted ids."""
    ordered = sorted(query_ids)
    if size >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, size))


def reader_pipeline(path: Path, reader_k: int, generator: Any = None) -> Any:
    """The RAG pipeline of ``path`` without its retriever: ``prompt_builder`` (given ``query`` and
    ``documents``) -> ``generator``. ``generator`` (any component with a ``prompt`` input and ``replies``
    output) replaces the YAML's one, e.g. a stub in tests."""
    import yaml

    from mpretriever.pipelines import load_pipeline

    overrides: dict[str, Any] = {}
    if reader_k > 1:
        template = yaml.safe_load(path.read_text(encoding="utf-8"))["components"]["prompt_builder"]["init_parameters"][
            "template"
        ]
        if SINGLE_PASSAGE not in template:
            raise ValueError(f"{path}: the prompt template has no {SINGLE_PASSAGE!r} to widen to {reader_k} passages")
        overrides["prompt_builder.template"] = template.replace(SINGLE_PASSAGE, JOINED_PASSAGES)
    pipeline = load_pipeline(path, overrides)
    names = set(dict(pipeline.walk()))
    if not {"prompt_builder", "generator"} <= names:
        raise ValueError(f"{path}: a RAG pipeline needs components 'prompt_builder' and 'generator'")
    if "retriever" in names:
        pipeline.remove_component("retriever")
    if generator is not None:
        pipeline.remove_component("generator")
        pipeline.add_component("generator", generator)
        pipeline.connect("prompt_builder.prompt", "generator.prompt")
    return pipeline


def _documents(dataset: BeirDataset, doc_ids: Sequence[str]) -> list[Any]:
    from haystack import Document

    rows = [dataset.corpus[dataset.doc_index[doc_id]] for doc_id in doc_ids]
    return [
        Document(id=doc_id, content=row["text"], meta={"title": row["title"]} if row.get("title") else {})
        for doc_id, row in zip(doc_ids, rows, strict=True)
    ]


def _answer(pipeline: Any, question: str, documents: list[Any]) -> str:
    result = pipeline.run({"prompt_builder": {"query": question, "documents": documents}})
    replies = result["generator"]["replies"]
    return str(replies[0]) if replies else ""


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate_qa(
    config: EvalConfig,
    qa: QAConfig | None = None,
    generator: Any = None,
    console: Console | None = None,
) -> QAReport:
    """Evaluate retrieval (``config``) and QA (``qa``) on a dataset whose queries carry gold answers.

    Raises :class:`NoAnswersError` before any search when the queries have no ``metadata.answers``.
    ``generator`` replaces the pipeline's generator component. With ``config.output`` the retrieval files, then
    ``qa-metrics.json`` and ``qa-predictions.json`` (per sampled question: answers, passage ids, replies, EM, F1)
    are written there.
    """
    qa = qa or QAConfig()
    started = time.perf_counter()
    dataset = BeirDataset(resolve_dataset(config.data))
    gold_answers = {qid: usable_answers(a) for qid, a in read_answers(dataset.queries_path).items()}
    gold_answers = {qid: a for qid, a in gold_answers.items() if a}
    if not gold_answers:
        raise NoAnswersError(f"{dataset.root}: the queries carry no gold answers (metadata.answers); QA needs them")
    oracle_qrels = dataset.qrels(qa.oracle_split) if qa.oracle_split and qa.sample else None
    if config.output is not None and not config.overwrite:
        existing = [n for n in (QA_METRICS_FILE, QA_PREDICTIONS_FILE) if (Path(config.output) / n).exists()]
        if existing:
            raise OutputExistsError(f"{config.output} already holds {', '.join(existing)}; pass --overwrite")

    config = replace(config, top_k=max(config.top_k, max(qa.recall_ks), qa.reader_k))
    retrieval = evaluate_retrieval(config, console=console)
    mode = qa.mode or retrieval.results[0].mode
    run = retrieval.result(mode).run
    answers = {qid: gold_answers[qid] for qid in run if qid in gold_answers}
    if not answers:
        raise NoAnswersError(f"{dataset.root}: none of the evaluated queries has a gold answer")

    timings: dict[str, float] = {}
    tick = time.perf_counter()
    passages = dict(zip(dataset.corpus["_id"], dataset.corpus["text"], strict=True))
    recall, first = answer_recall(run, answers, passages, qa.recall_ks)
    timings["answer_recall"] = time.perf_counter() - tick

    sample = sample_questions(list(answers), qa.sample, qa.seed)
    report = QAReport(retrieval, mode, len(answers), recall, sample, reader_k=qa.reader_k, seed=qa.seed)
    if sample:
        tick = time.perf_counter()
        from mpretriever.pipelines import pipeline_file

        path = qa.pipeline or pipeline_file(DEFAULT_PIPELINE)
        pipeline = reader_pipeline(path, qa.reader_k, generator)
        pipeline.warm_up()
        timings["reader_load"] = time.perf_counter() - tick
        tick = time.perf_counter()
        with task_progress(console, config.progress) as progress:
            _read(report, pipeline, dataset, run, answers, first, oracle_qrels, progress)
        timings["reader"] = time.perf_counter() - tick
    report.timings = timings
    report.wall_time_s = time.perf_counter() - started
    if config.output is not None:
        save_qa(report, Path(config.output))
    return report


def _read(
    report: QAReport,
    pipeline: Any,
    dataset: BeirDataset,
    run: Run,
    answers: Mapping[str, Sequence[str]],
    first: Mapping[str, int | None],
    oracle_qrels: Mapping[str, Mapping[str, Any]] | None,
    progress: Progress,
) -> None:
    """Generate and score the reader's (and the oracle's) reply to each sampled question, into ``report``."""
    scores: dict[str, list[float]] = {"EM": [], "F1": [], "oracle EM": [], "oracle F1": []}
    task = progress.add_task("reading (generator)", total=len(report.sample))
    for query_id in report.sample:
        question, gold = dataset.queries[query_id], list(answers[query_id])
        retrieved = [doc_id for doc_id, _ in trec_order(run.get(query_id, []))[: report.reader_k]]
        prediction = _answer(pipeline, question, _documents(dataset, retrieved))
        score = squad_score(prediction, gold)
        scores["EM"].append(score.exact_match)
        scores["F1"].append(score.f1)
        entry: dict[str, Any] = {
            "question": question,
            "answers": gold,
            "first_answer_rank": first.get(query_id),
            "passages": retrieved,
            "prediction": prediction,
            "em": score.exact_match,
            "f1": score.f1,
        }
        if oracle_qrels is not None:
            judged = oracle_qrels.get(query_id, {})
            relevant = [doc_id for doc_id, j in judged.items() if getattr(j, "grade", j) >= 1]
            if relevant:
                gold_passage = sorted(relevant)[:1]
                oracle_prediction = _answer(pipeline, question, _documents(dataset, gold_passage))
                oracle_score = squad_score(oracle_prediction, gold)
                scores["oracle EM"].append(oracle_score.exact_match)
                scores["oracle F1"].append(oracle_score.f1)
                entry.update(
                    oracle_passages=gold_passage,
                    oracle_prediction=oracle_prediction,
                    oracle_em=oracle_score.exact_match,
                    oracle_f1=oracle_score.f1,
                )
        report.predictions[query_id] = entry
        progress.update(task, advance=1)
    report.reader = {"EM": _mean(scores["EM"]), "F1": _mean(scores["F1"]), "questions": len(scores["EM"])}
    if scores["oracle EM"]:
        report.oracle = {
            "EM": _mean(scores["oracle EM"]),
            "F1": _mean(scores["oracle F1"]),
            "questions": len(scores["oracle EM"]),
        }


def save_qa(report: QAReport, directory: Path) -> list[Path]:
    """Write ``qa-metrics.json`` and ``qa-predictions.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = json.dumps(report.summary(), indent=2, ensure_ascii=False) + "\n"
    predictions = json.dumps(report.predictions, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    return [
        write_text_atomically(directory / QA_METRICS_FILE, summary),
        write_text_atomically(directory / QA_PREDICTIONS_FILE, predictions),
    ]
