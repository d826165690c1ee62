"""QA evaluation: answer recall@k on a constructed run, and evaluate_qa / mpr eval --qa on a tiny NQ-open sample
with a stub generator (deterministic, fast)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from haystack import component

from mpretriever.evaluation.qa import (
    QA_METRICS_FILE,
    QA_PREDICTIONS_FILE,
    NoAnswersError,
    QAConfig,
    answer_recall,
    evaluate_qa,
    sample_questions,
)
from mpretriever.evaluation.retrieval import EvalConfig
from tests.cli.test_cli import run_cli
from tests.conftest import write_jsonl, write_qrels

NQ = Path(os.environ.get("MPR_DATA_MIRROR", "/work/shared/data")) / "nq_open_oracle"


def test_answer_recall_on_a_constructed_run() -> None:
    passages = {
        "d1": "Paris is the capital of France.",
        "d2": "Berlin is the capital of Germany.",
        "d3": "Rome is in Italy.",
        "d4": "The fourth book.",
    }
    run = {
        "q1": [("d1", 0.9), ("d2", 0.8), ("d3", 0.7)],  # answer at rank 1
        "q2": [("d3", 0.9), ("d2", 0.5), ("d1", 0.4)],  # "berlin" at rank 2
        "q3": [("d4", 0.9), ("d1", 0.8)],  # "four" is not "fourth": never found
        "q4": [("d2", 0.1), ("d3", 0.9)],  # ranked by score: d3 (rank 1) then d2 (rank 2, has "germany")
    }
    answers = {"q1": ["Paris"], "q2": ["Berlin"], "q3": ["four"], "q4": ["Germany"], "q5": ["Rome"]}
    means, first = answer_recall(run, answers, passages, ks=(1, 2, 3))
    assert first == {"q1": 1, "q2": 2, "q3": None, "q4": 2, "q5": None}  # q5 retrieved nothing
    assert means == {"AnswerRecall@1": 1 / 5, "AnswerRecall@2": 3 / 5, "AnswerRecall@3": 3 / 5}
    with pytest.raises(ValueError, match="no question"):
        answer_recall(run, {}, passages)


def test_sample_questions_is_seeded_and_sorted() -> None:
    ids = [f"q{i}" for i in range(50)]
    first = sample_questions(ids, 10, seed=3)
    assert first == sample_questions(list(reversed(ids)), 10, seed=3) == sorted(first)
    assert len(set(first)) == 10 and first != sample_questions(ids, 10, seed=4)
    assert sample_questions(ids[:5], 10, seed=0) == sorted(ids[:5])


@pytest.fixture(scope="module")
def nq_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 NQ-open oracle questions, their gold passages and 9 other passages (12 documents)."""
    if not (NQ / "queries.jsonl").is_file():
        pytest.skip("nq_open_oracle mirror not available")
    root = tmp_path_factory.mktemp("nq-sample")
    with (NQ / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = [json.loads(line) for line, _ in zip(handle, range(3), strict=False)]
    gold = {q["metadata"]["gold_doc_id"] for q in queries}
    with gzip.open(NQ / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        documents = [json.loads(line) for line in handle]
    corpus = [doc for doc in documents if doc["_id"] in gold]
    others = [doc for doc in documents[:30] if doc["_id"] not in gold]
    write_jsonl(root / "corpus.jsonl", corpus + others[:9])
    write_jsonl(root / "queries.jsonl", queries)
    rows = [(q["_id"], q["metadata"]["gold_doc_id"], 1) for q in queries]
    write_qrels(root / "qrels" / "test.tsv", rows)
    write_qrels(root / "qrels" / "gold.tsv", rows)
    return root


@component
class LookupReader:
    """A stub generator: answers a question right only when its gold passage is in the prompt (else a fixed
    wrong reply), and records the prompts."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.prompts: list[str] = []

    @component.output_types(replies=list[str])
    def run(self, prompt: str) -> dict[str, Any]:
        self.prompts.append(prompt)
        asked = prompt.rsplit("Passage:", 1)[1]
        return {"replies": [next((answer for text, answer in self.known.items() if text in asked), "Paris")]}


@component
class FixedReply:
    """A stub generator that always gives the same reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    @component.output_types(replies=list[str])
    def run(self, prompt: str) -> dict[str, Any]:
        return {"replies": [self.reply]}


def _known(root: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    queries = {q["_id"]: q for q in map(json.loads, (root / "queries.jsonl").read_text().splitlines())}
    corpus = {d["_id"]: d for d in map(json.loads, (root / "corpus.jsonl").read_text().splitlines())}
    known = {corpus[q["metadata"]["gold_doc_id"]]["text"][:80]: q["metadata"]["answers"][0] for q in queries.values()}
    return known, queries


def test_evaluate_qa_end_to_end_with_a_stub_generator(nq_sample: Path, tiny_run: Path, tmp_path: Path) -> None:
    known, queries = _known(nq_sample)
    reader = LookupReader(known)
    config = EvalConfig(data=str(nq_sample), model=str(tiny_run), output=tmp_path / "qa", progress=False)
    report = evaluate_qa(config, QAConfig(sample=3, reader_k=2), generator=reader)

    assert report.answered == 3 and report.sample == sorted(queries)
    assert report.retrieval.top_k == 100  # raised to the deepest answer recall cutoff
    # every gold passage holds its answer, and the 12-document corpus is all retrieved: recall@100 is 1
    assert report.recall["AnswerRecall@100"] == 1.0
    assert report.recall["AnswerRecall@1"] <= report.recall["AnswerRecall@5"] <= 1.0
    # the oracle reads the gold passage, so the lookup stub answers every question exactly
    assert report.oracle == {"EM": 1.0, "F1": 1.0, "questions": 3}
    assert len(reader.prompts) == 6  # one retrieved and one oracle prompt per question

    predictions = json.loads((tmp_path / "qa" / QA_PREDICTIONS_FILE).read_text())
    assert sorted(predictions) == sorted(queries)
    expected_em = []
    for query_id, entry in predictions.items():
        gold_id = queries[query_id]["metadata"]["gold_doc_id"]
        assert entry["answers"] == queries[query_id]["metadata"]["answers"]
        assert len(entry["passages"]) == 2 and entry["oracle_passages"] == [gold_id]
        assert entry["oracle_prediction"] == entry["answers"][0] and entry["oracle_em"] == 1.0
        # the retrieved run is right exactly when the gold passage is among the 2 passages read
        assert entry["em"] == (1.0 if gold_id in entry["passages"] else 0.0)
        expected_em.append(entry["em"])
    assert report.reader["EM"] == pytest.approx(sum(expected_em) / 3)
    summary = json.loads((tmp_path / "qa" / QA_METRICS_FILE).read_text())
    assert summary["reader_k"] == 2 and summary["oracle"]["EM"] == 1.0 and summary["answered_questions"] == 3
    assert (tmp_path / "qa" / "metrics.json").is_file()  # the retrieval files sit beside the QA ones


def test_f1_bookkeeping_with_a_fixed_reply(nq_sample: Path, tiny_run: Path) -> None:
    _, queries = _known(nq_sample)
    first = sorted(queries)[0]
    reader = FixedReply(queries[first]["metadata"]["answers"][0])
    config = EvalConfig(data=str(nq_sample), model=str(tiny_run), progress=False)
    report = evaluate_qa(config, QAConfig(sample=3, reader_k=1), generator=reader)
    # the fixed reply is the first question's answer: EM 1 there, and (no shared token with the others) 0 elsewhere
    per_question = {qid: entry["em"] for qid, entry in report.predictions.items()}
    assert per_question[first] == 1.0 and sum(per_question.values()) == 1.0
    assert report.reader["EM"] == pytest.approx(1 / 3) and report.oracle["EM"] == pytest.approx(1 / 3)
    assert report.reader["F1"] == pytest.approx(sum(e["f1"] for e in report.predictions.values()) / 3)


def test_dataset_without_answers_is_refused(graded_beir: Path) -> None:
    with pytest.raises(NoAnswersError, match="no gold answers"):
        evaluate_qa(EvalConfig(data=str(graded_beir), progress=False))


def test_cli_qa_refuses_a_dataset_without_answers(graded_beir: Path, tiny_run: Path, capsys, monkeypatch) -> None:
    code, _, err = run_cli(["eval", "--data", str(graded_beir), "--model", str(tiny_run), "--qa"], capsys, monkeypatch)
    assert code == 2 and "no gold answers" in err and "Traceback" not in err


def test_cli_qa_recall_only(nq_sample: Path, tiny_run: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    args = ["eval", "--data", str(nq_sample), "--model", str(tiny_run), "--qa", "--qa-sample", "0"]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert "AnswerRecall@100" in out and "1.0000" in out and "reader EM" not in out
