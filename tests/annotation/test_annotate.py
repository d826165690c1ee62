from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mpretriever.annotation.journal import Journal
from mpretriever.annotation.local_judge import LocalLMJudge
from mpretriever.annotation.run import AnnotateConfig, annotate, sample_queries
from mpretriever.data.beir import BeirDataset, load_qrels
from mpretriever.files import OutputExistsError
from tests.conftest import REPO_ROOT


def config(tiny_beir: Path, judge_model: Path, output: Path, **changes: Any) -> AnnotateConfig:
    options: dict[str, Any] = {
        "data": str(tiny_beir),
        "output": output,
        "split": "train",
        "depth": 3,
        "judge": str(judge_model),
        "judge_batch_size": 2,
        "dtype": "float32",  # exact figures whatever the batch (bfloat16 is exact only to its rounding)
        "progress": False,
    }
    return AnnotateConfig(**{**options, **changes})


class CountingJudge:
    """The tiny local judge, counting the pairs it judges."""

    def __init__(self, model: Path) -> None:
        self.inner = LocalLMJudge(model=str(model), batch_size=2, dtype="float32")
        self.batch_size = 2
        self.pairs = 0

    def warm_up(self) -> None:
        self.inner.warm_up()

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def judge_id(self) -> str:
        return self.inner.judge_id()

    def run(self, queries: list[str], passages: list[str]) -> dict[str, Any]:
        self.pairs += len(queries)
        return self.inner.run(queries=queries, passages=passages)


def test_annotate_writes_qrels_with_grades_and_source(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    output = tmp_path / "llm.tsv"
    outcome = annotate(config(tiny_beir, tiny_causal_lm, output, source="smollm"))
    dataset = BeirDataset(tiny_beir)
    human = dataset.qrels("train")
    labels = load_qrels(output, dataset.queries, dataset.doc_index)
    assert outcome.queries == 12 and outcome.pairs == 36 and outcome.judged_now == 36
    assert sum(len(docs) for docs in labels.values()) == 36  # every judged pair, grade 0 included
    for query_id, docs in labels.items():
        assert len(docs) == 3
        assert not set(docs) & set(human[query_id])  # the pool is unjudged passages alone
        assert all(j.source == "smollm" and 0 <= j.grade <= 3 for j in docs.values())
    assert sum(outcome.grades.values()) == 36
    sidecar = [json.loads(line) for line in output.with_name("llm.judgements.jsonl").read_text().splitlines()]
    assert len(sidecar) == 36
    assert all(len(row["probabilities"]) == 4 and abs(sum(row["probabilities"]) - 1) < 1e-4 for row in sidecar)
    summary = json.loads(output.with_name("llm.annotation.json").read_text())
    assert summary["judge"]["fingerprint"] and summary["judge"]["prompt_sha256"]
    assert summary["judged_now"] == 36 and summary["agreement"] is None


def test_include_judged_reports_agreement(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    outcome = annotate(config(tiny_beir, tiny_causal_lm, tmp_path / "llm.tsv", depth=1, include_judged=True))
    assert outcome.pairs == 12 * (1 + 3)
    assert outcome.agreement is not None and outcome.agreement.pairs == 36
    assert sum(map(sum, outcome.agreement.confusion)) == 36
    summary = json.loads((tmp_path / "llm.annotation.json").read_text())
    assert summary["agreement"]["pairs"] == 36


def test_no_skip_judged_ranks_judged_passages_into_the_pool(
    tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path
) -> None:
    dataset = BeirDataset(tiny_beir)
    human = dataset.qrels("train")
    depth = len(dataset.corpus)  # every passage BM25 matches: the judged ones among them stay in the pool
    ranked = annotate(config(tiny_beir, tiny_causal_lm, tmp_path / "ranked.tsv", depth=depth, skip_judged=False))
    labels = load_qrels(tmp_path / "ranked.tsv", dataset.queries, dataset.doc_index)
    ranked_judged = sum(len(set(human[query_id]) & set(docs)) for query_id, docs in labels.items())
    assert ranked_judged > 0
    assert ranked.agreement is not None and ranked.agreement.pairs == ranked_judged
    skipped = annotate(config(tiny_beir, tiny_causal_lm, tmp_path / "skipped.tsv", depth=depth))
    assert skipped.pairs == ranked.pairs - ranked_judged
    both = annotate(
        config(tiny_beir, tiny_causal_lm, tmp_path / "both.tsv", depth=depth, skip_judged=False, include_judged=True)
    )
    assert both.pairs == ranked.pairs + 36 - ranked_judged  # a judged passage ranked into the pool is judged once


def test_a_rerun_judges_only_what_is_missing(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    output = tmp_path / "llm.tsv"
    first = CountingJudge(tiny_causal_lm)
    annotate(config(tiny_beir, tiny_causal_lm, output, depth=2), judge=first)
    assert first.pairs == 24
    with pytest.raises(OutputExistsError, match="--overwrite"):
        annotate(config(tiny_beir, tiny_causal_lm, output, depth=3))
    deeper = CountingJudge(tiny_causal_lm)
    outcome = annotate(config(tiny_beir, tiny_causal_lm, output, depth=3, overwrite=True), judge=deeper)
    assert deeper.pairs == 12  # only each query's third candidate
    assert (outcome.judged_now, outcome.reused) == (12, 24)
    fresh = tmp_path / "fresh" / "llm.tsv"
    annotate(config(tiny_beir, tiny_causal_lm, fresh, depth=3))
    assert output.read_text() == fresh.read_text()


def test_another_prompt_is_never_served_old_judgements(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    output = tmp_path / "llm.tsv"
    annotate(config(tiny_beir, tiny_causal_lm, output, depth=1))
    template = tmp_path / "terse.jinja"
    template.write_text("Query: {{ query }}\nPassage: {{ passage }}\nRelevance 0-3:", encoding="utf-8")
    judge = CountingJudge(tiny_causal_lm)
    judge.inner = LocalLMJudge(model=str(tiny_causal_lm), prompt=str(template), batch_size=2, dtype="float32")
    annotate(config(tiny_beir, tiny_causal_lm, output, depth=1, overwrite=True), judge=judge)
    assert judge.pairs == 12
    assert len(Journal(tmp_path / "llm.journal.jsonl")) == 24  # both judges' judgements kept, apart


def test_report_only_recomputes_from_the_journal(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    output = tmp_path / "llm.tsv"
    judged = annotate(config(tiny_beir, tiny_causal_lm, output, depth=1, include_judged=True))
    summary = output.with_name("llm.annotation.json")
    recorded = json.loads(summary.read_text())
    summary.write_text(json.dumps({**recorded, "agreement": None}))  # e.g. a summary written before agreements
    judge = CountingJudge(tiny_causal_lm)
    report = annotate(config(tiny_beir, tiny_causal_lm, output, depth=1, report_only=True), judge=judge)
    assert judge.pairs == 0
    assert report.agreement == judged.agreement
    assert json.loads(summary.read_text()) == recorded  # the run's counts and speed kept, its agreement back


def test_a_sample_of_queries_is_stable(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    ids = [f"q{n}" for n in range(50)]
    assert sample_queries(ids, 10, seed=1) == sample_queries(list(reversed(ids)), 10, seed=1)
    assert sample_queries(ids, 10, seed=1) != sample_queries(ids, 10, seed=2)
    assert set(sample_queries(ids, 10, seed=1)) <= set(sample_queries([*ids, "extra"], 11, seed=1)) | {"extra"}
    outcome = annotate(config(tiny_beir, tiny_causal_lm, tmp_path / "llm.tsv", depth=1, max_queries=5))
    assert outcome.queries == 5 and outcome.pairs == 5


def test_bad_options_are_refused(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\*\.tsv"):
        config(tiny_beir, tiny_causal_lm, tmp_path / "llm.jsonl")
    with pytest.raises(ValueError, match="--collection"):
        config(tiny_beir, tiny_causal_lm, tmp_path / "llm.tsv", candidates="collection")
    with pytest.raises(ValueError, match="BM25 needs no model"):
        config(tiny_beir, tiny_causal_lm, tmp_path / "llm.tsv", model="some-model")


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from mpretriever.annotation.local_judge import LocalLMJudge
from mpretriever.annotation.run import AnnotateConfig, annotate

class Killed(LocalLMJudge):
    calls = 0
    def run(self, queries, passages):
        Killed.calls += 1
        if Killed.calls == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(queries=queries, passages=passages)

data, model, output = sys.argv[1:]
config = AnnotateConfig(
    data=data, output=Path(output), depth=3, judge=model, judge_batch_size=2, dtype="float32", progress=False
)
annotate(config, judge=Killed(model=model, batch_size=2, dtype="float32"))
"""


def test_kill_9_loses_at_most_the_batch_in_flight(tiny_beir: Path, tiny_causal_lm: Path, tmp_path: Path) -> None:
    output = tmp_path / "llm.tsv"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tiny_beir), str(tiny_causal_lm), str(output)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert not output.exists()
    journal = Journal(tmp_path / "llm.journal.jsonl")
    assert len(journal) == 2 * 2 * 4  # two journal writes of 4 batches of 2 pairs were synced before the kill
    judge = CountingJudge(tiny_causal_lm)
    outcome = annotate(config(tiny_beir, tiny_causal_lm, output), judge=judge)
    assert judge.pairs == 36 - 16 and outcome.reused == 16
    fresh = tmp_path / "fresh" / "llm.tsv"
    annotate(config(tiny_beir, tiny_causal_lm, fresh))
    assert output.read_text() == fresh.read_text()


@pytest.mark.parametrize("source", ["dense", "collection"])
def test_dense_and_collection_pools_are_the_miners_rankings(
    source: str, tiny_beir: Path, tiny_causal_lm: Path, tiny_run: Path, tiny_index: Path, tmp_path: Path
) -> None:
    from mpretriever.index.connection import QdrantSettings
    from mpretriever.mining.base import MiningQuery
    from mpretriever.mining.dense import DenseMiner, QdrantMiner
    from mpretriever.model import BiEncoder

    if source == "dense":
        changes: dict[str, Any] = {"candidates": "dense", "model": str(tiny_run)}
    else:
        changes = {"candidates": "collection", "collection": "tiny", "qdrant": QdrantSettings(path=str(tiny_index))}
    output = tmp_path / "llm.tsv"
    annotate(config(tiny_beir, tiny_causal_lm, output, depth=4, max_queries=4, **changes))
    dataset = BeirDataset(tiny_beir)
    human = dataset.qrels("train")
    labels = load_qrels(output, dataset.queries, dataset.doc_index)
    encoder = BiEncoder.from_pretrained(tiny_run)
    queries = [MiningQuery(q, dataset.queries[q], (), frozenset(human[q])) for q in sorted(labels)]
    if source == "dense":
        rankings = DenseMiner.from_corpus(encoder, dataset.corpus).rank(queries, 4)
    else:  # the collection's passages were indexed with other titles: its ranking is its own
        client = QdrantSettings(path=str(tiny_index)).connect()
        try:
            rankings = QdrantMiner(client, "tiny", encoder).rank(queries, 4)
        finally:
            client.close()
    expected = {ranking.query_id: {c.doc_id for c in ranking.candidates} for ranking in rankings}
    assert {q: set(docs) for q, docs in labels.items()} == expected
    assert all(not set(docs) & set(human[q]) for q, docs in labels.items())
