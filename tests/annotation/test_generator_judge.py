"""The pipeline judge against a stand-in OpenAI-compatible server on loopback: strict parsing, retries of malformed
replies, rate limits retried by the client, bounded concurrency, and an unreachable endpoint stopping the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mpretriever.annotation.generator_judge import GeneratorJudge, JudgeRequestError, parse_grade
from mpretriever.annotation.journal import Journal
from mpretriever.annotation.run import AnnotateConfig, annotate
from mpretriever.data.beir import BeirDataset, load_qrels
from tests.conftest import REPO_ROOT
from tests.service.conftest import free_loopback_port, serving

PIPELINE = REPO_ROOT / "pipelines" / "annotate-openai.yml"


def chat(content: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class StandIn:
    """Grades by the passage's first word: good 3, fine 2, weak 1, bad 0; 'chatty' always rambles, 'flaky'
    rambles once, 'limited' is refused with a 429 once. Records requests and the most in flight at once."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.asked: dict[str, int] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.complete)

    async def complete(self, request: Request) -> Any:
        body = json.loads(await request.body())
        self.requests.append(body)
        prompt = " ".join(
            m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in body["messages"]
        )
        word = prompt.split("Passage: ", 1)[1].split()[0]
        self.asked[word] = self.asked.get(word, 0) + 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.05)
            if word == "limited" and self.asked[word] == 1:
                return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"retry-after": "0"})
            replies = {
                "good": "3",
                "fine": " Grade: 2.",
                "weak": "1",
                "bad": "0",
                "chatty": "It is 2 or 3.",
                "limited": "1",
            }
            reply = replies.get(word) or ("maybe" if self.asked[word] == 1 else "2")
            return chat(reply, body["model"])
        finally:
            self.in_flight -= 1


def judge(url: str, **changes: Any) -> GeneratorJudge:
    overrides = {"generator.api_base_url": f"{url}/v1", "generator.model": "stand-in", "generator.max_retries": 2}
    return GeneratorJudge(pipeline=str(PIPELINE), overrides=overrides, **changes)


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("3", 3),
        (" 0\n", 0),
        ("2.", 2),
        ("Grade: 1", 1),
        ("grade=2", 2),
        ("4", None),
        ("2 or 3", None),
        ("The grade is 2", None),
        ("", None),
        (None, None),
        ("-1", None),
    ],
)
def test_parse_grade_is_strict(reply: str | None, grade: int | None) -> None:
    assert parse_grade(reply) == grade


def test_to_dict_and_from_dict() -> None:
    original = GeneratorJudge(pipeline="annotate-openai.yml", overrides={"generator.model": "m"}, concurrency=2)
    data = original.to_dict()
    assert data["init_parameters"] == {
        "pipeline": "annotate-openai.yml",
        "overrides": {"generator.model": "m"},
        "query_max_words": 64,
        "passage_max_words": 200,
        "max_attempts": 3,
        "concurrency": 2,
        "batch_size": 16,
    }
    restored = GeneratorJudge.from_dict(data)
    assert restored.to_dict() == data and restored._pipeline is None


def test_run_parses_retries_and_never_guesses(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    server = StandIn()
    with serving(server.app) as url:
        passages = ["good passage", "fine one", "weak", "bad text", "chatty words", "flaky", "limited"]
        result = judge(url, concurrency=3).run(queries=["statins"] * len(passages), passages=passages)
    assert result["grades"] == [3, 2, 1, 0, None, 2, 1]
    assert result["replies"][4] == "It is 2 or 3."  # kept, never read as a grade
    assert result["attempts"] == [1, 1, 1, 1, 3, 2, 1]
    assert server.asked["chatty"] == 3 and server.asked["limited"] == 2  # the 429 retried by the client
    assert 1 < server.most_in_flight <= 3
    assert server.requests[0]["model"] == "stand-in" and server.requests[0]["temperature"] == 0
    assert "Query: statins" in json.dumps(server.requests[0]["messages"])


def test_identity_follows_the_pipelines_settings(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    one = judge("http://127.0.0.1:9").identity()
    other = GeneratorJudge(pipeline=str(PIPELINE), overrides={"generator.model": "another"}).identity()
    assert one["model"] == "stand-in" and other["model"] == "another"
    assert one["pipeline_sha256"] != other["pipeline_sha256"]
    assert one["prompt_sha256"] == other["prompt_sha256"]
    assert "test-key" not in json.dumps(one)


def test_annotate_with_the_pipeline_judge(tiny_beir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    server = StandIn()
    output = tmp_path / "llm.tsv"
    with serving(server.app) as url:
        config = AnnotateConfig(
            data=str(tiny_beir),
            output=output,
            depth=2,
            judge=str(PIPELINE),
            judge_overrides={"generator.api_base_url": f"{url}/v1", "generator.model": "stand-in"},
            progress=False,
        )
        outcome = annotate(config)
    assert outcome.pairs == 24 and outcome.unjudged == 0
    dataset = BeirDataset(tiny_beir)
    labels = load_qrels(output, dataset.queries, dataset.doc_index)
    assert sum(len(docs) for docs in labels.values()) == 24
    records = Journal(tmp_path / "llm.journal.jsonl").records.values()
    assert all(record.reply is not None and record.probabilities is None for record in records)


def test_an_unreachable_endpoint_stops_the_run_and_keeps_nothing_half_done(
    tiny_beir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    down = f"http://127.0.0.1:{free_loopback_port()}/v1"
    config = AnnotateConfig(
        data=str(tiny_beir),
        output=tmp_path / "llm.tsv",
        depth=1,
        judge=str(PIPELINE),
        judge_overrides={"generator.api_base_url": down, "generator.max_retries": 0, "generator.timeout": 5},
        progress=False,
    )
    with pytest.raises(JudgeRequestError, match=r"the generator of annotate-openai\.yml failed"):
        annotate(config)
    assert not (tmp_path / "llm.tsv").exists()
