"""Writing the answer: the prompt builder and generator of a RAG pipeline YAML file (``pipelines/rag.yml`` by
default, ``rag-openai.yml`` for an OpenAI-compatible endpoint), fed the passages the service retrieved.

The pipeline's own retriever is removed; its ``top_k`` is kept as the number of passages the prompt gets (the
pipeline's reader depth), whatever number of passages the request asks to see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from haystack import Document
from haystack.dataclasses import ChatMessage

from mpretriever.pipelines import load_pipeline

RAG_COMPONENTS = ("retriever", "prompt_builder", "generator")


class AnswerGenerator(Protocol):
    """Writes an answer to a question from retrieved passages. Need not be thread-safe: the service serialises
    calls to ``generate``."""

    name: str

    def warm_up(self) -> None: ...

    def generate(self, question: str, documents: list[Document]) -> str: ...


class GenerationError(RuntimeError):
    """The generator failed (e.g. an unreachable OpenAI-compatible endpoint); HTTP 502."""


class PipelineAnswerGenerator:
    """The ``prompt_builder`` -> ``generator`` part of a RAG pipeline file."""

    def __init__(self, path: str | Path, overrides: dict[str, Any] | None = None) -> None:
        """
        :param path: a pipeline YAML file with components ``retriever``, ``prompt_builder`` and ``generator``.
        :param overrides: ``"component.param"`` to value, as for :func:`mpretriever.pipelines.load_pipeline`.
        """
        path = Path(path)
        pipeline = load_pipeline(path, overrides)
        names = {name for name, _ in pipeline.walk()}
        missing = [name for name in RAG_COMPONENTS if name not in names]
        if missing:
            raise ValueError(f"{path}: not a RAG pipeline, it lacks component(s) {', '.join(missing)}")
        self.passages: int = pipeline.get_component("retriever").top_k
        pipeline.remove_component("retriever")
        self.name = path.name
        self._pipeline = pipeline

    def warm_up(self) -> None:
        self._pipeline.warm_up()

    def generate(self, question: str, documents: list[Document]) -> str:
        try:
            result = self._pipeline.run(
                {"prompt_builder": {"query": question, "documents": documents[: self.passages]}}
            )
        except Exception as error:
            raise GenerationError(f"the generator of {self.name} failed: {error}") from error
        replies = result["generator"]["replies"]
        reply = replies[0] if replies else ""
        text = reply.text if isinstance(reply, ChatMessage) else reply
        return (text or "").strip()
