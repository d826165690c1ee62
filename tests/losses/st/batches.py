"""Texts for the sentence-transformers loss tests: distinct words per text, so that no two texts tokenise alike."""

from __future__ import annotations

import random
from typing import Any

import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from torch import Tensor

from tests.conftest import TINY_WORDS


def make_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts: set[str] = set()
    while len(texts) < count:
        texts.add(" ".join(rng.sample(TINY_WORDS, rng.randint(2, 6))))
    return sorted(texts)


def features(batch: dict[str, Any]) -> tuple[list[dict[str, Tensor]], Any]:
    """What SentenceTransformerTrainer hands a loss: the batch's features per column, and its labels."""
    return SentenceTransformerTrainer.collect_features(None, batch)  # it reads only the batch


def loss_and_gradients(loss: torch.nn.Module, batch: dict[str, Any], model: SentenceTransformer) -> tuple[float, dict]:
    model.zero_grad(set_to_none=True)
    value = loss(*features(batch))
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same(first: tuple[float, dict], second: tuple[float, dict], rel: float = 1e-5) -> None:
    assert abs(first[0] - second[0]) <= rel * abs(second[0]) + 1e-7, (first[0], second[0])
    assert first[1].keys() == second[1].keys() and len(second[1]) > 10
    for name, gradient in second[1].items():
        tolerance = 1e-4 * gradient.abs().max().item() + 1e-8
        assert (first[1][name] - gradient).abs().max().item() <= tolerance, name
