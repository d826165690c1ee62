"""``GeneratorJudge``: relevance grades from the reply of a Haystack pipeline's generator.

The pipeline YAML holds a ``prompt_builder`` (variables ``query`` and ``passage``) and a ``generator`` whose reply
is the grade: ``pipelines/annotate-openai.yml`` talks to any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama,
llama.cpp's server), the key read through a Haystack ``Secret``; swap the generator in the YAML for another.

A reply is parsed strictly (:func:`parse_grade`: one grade 0-3, optionally after ``Grade:``); a malformed reply
is asked again, up to ``max_attempts`` times, and then recorded as unjudged with its text, never guessed. Pairs
are judged ``concurrency`` at a time. Rate limits (429), server errors (5xx) and timeouts are retried with
exponential back-off by the generator's own client (``max_retries`` and ``timeout`` of OpenAIChatGenerator);
a request that still fails stops the run, and the journal keeps every judgement made before it.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage

from mpretriever.annotation.prompt import GRADES

JUDGE_COMPONENTS = ("prompt_builder", "generator")
_GRADE_REPLY = re.compile(r"(?:grade\s*[:=]?\s*)?([0-9]+)\s*\.?", re.IGNORECASE)


class JudgeRequestError(RuntimeError):
    """The generator failed for a pair even after its client's retries (endpoint down, key refused, ...)."""


def parse_grade(reply: str | None) -> int | None:
    """The grade a reply gives, or ``None`` unless the whole reply is one grade 0-3 (``"2"``, ``" 3."``,
    ``"Grade: 1"``); ``"2 or 3"``, ``"4"`` and prose are malformed."""
    match = _GRADE_REPLY.fullmatch((reply or "").strip())
    if match is None:
        return None
    grade = int(match.group(1))
    return grade if grade in GRADES else None


def _reply_text(result: dict[str, Any]) -> str:
    replies = result["generator"]["replies"]
    reply = replies[0] if replies else ""
    return (reply.text if isinstance(reply, ChatMessage) else reply) or ""


def _cut_words(text: str, max_words: int) -> str:
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


@component
class GeneratorJudge:
    """Grades (query, passage) pairs 0-3 with the generator of a Haystack pipeline YAML file."""

    def __init__(
        self,
        *,
        pipeline: str,
        overrides: dict[str, Any] | None = None,
        query_max_words: int = 64,
        passage_max_words: int = 200,
        max_attempts: int = 3,
        concurrency: int = 4,
        batch_size: int = 16,
    ) -> None:
        """
        :param pipeline: a pipeline YAML file with components ``prompt_builder`` and ``generator``.
        :param overrides: ``"component.param"`` to value, as for ``mpr pipeline run --set``.
        :param query_max_words: queries are cut to this many words.
        :param passage_max_words: passages are cut to this many words (the endpoint's tokenizer is not known).
        :param max_attempts: asks per pair while the reply is malformed.
        :param concurrency: requests in flight at once.
        :param batch_size: pairs per call of :meth:`run` from ``mpr annotate`` (one journal write per few calls).
        """
        for name, value in (
            ("query_max_words", query_max_words),
            ("passage_max_words", passage_max_words),
            ("max_attempts", max_attempts),
            ("concurrency", concurrency),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.pipeline = pipeline
        self.overrides = overrides
        self.query_max_words = query_max_words
        self.passage_max_words = passage_max_words
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.batch_size = batch_size
        self._pipeline: Any = None

    def warm_up(self) -> None:
        """Load and warm up the pipeline. Idempotent."""
        if self._pipeline is not None:
            return
        from mpretriever.pipelines import load_pipeline, pipeline_file

        path = Path(self.pipeline)
        if not path.is_file() and path.name == self.pipeline:
            path = pipeline_file(self.pipeline)  # one of the project's pipelines by name: annotate-openai.yml
        pipeline = load_pipeline(path, self.overrides)
        names = {name for name, _ in pipeline.walk()}
        missing = [name for name in JUDGE_COMPONENTS if name not in names]
        if missing:
            raise ValueError(f"{self.pipeline}: not a judging pipeline, it lacks component(s) {', '.join(missing)}")
        pipeline.warm_up()
        self._pipeline = pipeline

    def identity(self) -> dict[str, Any]:
        """The pipeline as serialised (generator, model, endpoint and settings; secrets by name only) and the
        prompt template's hash."""
        if self._pipeline is None:
            self.warm_up()
        definition = self._pipeline.to_dict()
        builder = definition["components"]["prompt_builder"]["init_parameters"]
        template = json.dumps(builder.get("template"), sort_keys=True, default=str)
        generator = definition["components"]["generator"]
        return {
            "kind": "generator",
            "pipeline": Path(self.pipeline).name,
            "pipeline_sha256": hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest(),
            "generator": generator["type"],
            "model": generator["init_parameters"].get("model"),
            "api_base_url": generator["init_parameters"].get("api_base_url"),
            "prompt_sha256": hashlib.sha256(template.encode()).hexdigest(),
            "query_max_words": self.query_max_words,
            "passage_max_words": self.passage_max_words,
            "max_attempts": self.max_attempts,
        }

    def judge_id(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def _judge_one(self, pair: tuple[str, str]) -> tuple[int | None, str, int]:
        query, passage = pair
        inputs = {
            "prompt_builder": {
                "query": _cut_words(query, self.query_max_words),
                "passage": _cut_words(passage, self.passage_max_words),
            }
        }
        reply = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = _reply_text(self._pipeline.run(inputs))
            except Exception as error:
                raise JudgeRequestError(f"the generator of {Path(self.pipeline).name} failed: {error}") from error
            grade = parse_grade(reply)
            if grade is not None:
                return grade, reply, attempt
        return None, reply, self.max_attempts

    @component.output_types(grades=list, replies=list[str], attempts=list[int])
    def run(self, queries: list[str], passages: list[str]) -> dict[str, Any]:
        """
        :param queries: one query text per pair.
        :param passages: one passage text per pair.
        :returns: ``grades`` (0-3, or ``None`` for a reply still malformed after ``max_attempts``), the last
            ``replies`` and the ``attempts`` each pair took, in input order.
        """
        if len(queries) != len(passages):
            raise ValueError(f"got {len(queries)} queries for {len(passages)} passages: one of each per pair")
        if self._pipeline is None:
            self.warm_up()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            judged = list(pool.map(self._judge_one, zip(queries, passages, strict=True)))
        return {
            "grades": [grade for grade, _, _ in judged],
            "replies": [reply for _, reply, _ in judged],
            "attempts": [attempts for _, _, attempts in judged],
        }

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            pipeline=self.pipeline,
            overrides=self.overrides,
            query_max_words=self.query_max_words,
            passage_max_words=self.passage_max_words,
            max_attempts=self.max_attempts,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorJudge:
        return default_from_dict(cls, data)
