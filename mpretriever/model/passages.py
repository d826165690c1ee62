"""Passage tokenisation for whole corpora, cached on disk by ``datasets``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import datasets

from mpretriever.data.beir import passage_texts
from mpretriever.model.bi_encoder import BiEncoder


@dataclass
class PassageTokenizer:
    """Picklable ``datasets.map`` function: corpus rows to passage token ids (so the map is cached on disk)."""

    tokenizer: Any
    prefix: str
    max_length: int

    def __call__(self, batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        texts = [self.prefix + text for text in passage_texts(batch)]
        return {"input_ids": self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]}


def tokenize_corpus(corpus: datasets.Dataset, model: BiEncoder, num_proc: int | None = None) -> datasets.Dataset:
    """Token ids of every passage, computed once and cached by ``datasets`` (keyed on corpus and tokenizer)."""
    function = PassageTokenizer(model.tokenizer, model.config.passage_prefix, model.config.passage_max_length)
    return corpus.map(
        function,
        batched=True,
        batch_size=1000,
        num_proc=num_proc,
        remove_columns=corpus.column_names,
        desc="Tokenising passages",
        new_fingerprint=_fingerprint(corpus, function),
    )


def _fingerprint(corpus: datasets.Dataset, function: PassageTokenizer) -> str:
    """Cache key of the tokenised corpus, computed here rather than by pickling the tokenizer (which is slow
    and fails on some dill / pyarrow combinations)."""
    tokenizer = function.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    identity = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(identity.encode())
    digest.update(f"{corpus._fingerprint}|{function.prefix}|{function.max_length}".encode())
    return digest.hexdigest()[:32]
