"""GradCache: for every objective, the cached loss and gradients equal the uncached ones."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from mpretriever.model import BiEncoder
from mpretriever.training import grad_cache
from mpretriever.training.grad_cache import split_features
from mpretriever.training.objectives import OBJECTIVES
from mpretriever.training.step import batch_loss
from tests.training.batches import collate, groups_for

TEMPERATURE = 0.05


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_model_dir, normalize=True)


def gradients(encoder: BiEncoder) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}


def loss_and_gradients(encoder: BiEncoder, inputs, loss_fn, chunk: int | None) -> tuple[float, dict]:
    encoder.zero_grad(set_to_none=True)
    loss = batch_loss(encoder, encoder, inputs, loss_fn, TEMPERATURE, grad_cache_chunk=chunk)
    loss.backward()
    return loss.item(), gradients(encoder)


def assert_same_gradients(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys() and len(expected) > 10
    for name, gradient in expected.items():
        # float32 noise relative to the tensor's scale (some gradients, e.g. of attention key biases, are ~0)
        tolerance = 1e-4 * gradient.abs().max().item() + 1e-8
        assert (actual[name] - gradient).abs().max().item() <= tolerance, name


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("chunk", [1, 4])
def test_cached_gradients_equal_uncached(objective: str, chunk: int, encoder: BiEncoder) -> None:
    encoder.eval()  # dropout off: both paths must see the same network
    inputs = collate(encoder, groups_for(OBJECTIVES[objective].policy))
    loss_fn = OBJECTIVES[objective].bind()
    expected_loss, expected = loss_and_gradients(encoder, inputs, loss_fn, None)
    actual_loss, actual = loss_and_gradients(encoder, inputs, loss_fn, chunk)
    assert actual_loss == pytest.approx(expected_loss, rel=1e-5)
    assert_same_gradients(actual, expected)


def chunked_reference(encoder: BiEncoder, inputs, loss_fn, chunk: int) -> tuple[float, dict]:
    """Uncached loss whose forward passes run chunk by chunk, in the order GradCache draws its random numbers."""
    encoder.zero_grad(set_to_none=True)
    embeddings = [
        torch.cat([encoder(piece) for piece in split_features(inputs[key], chunk)]) for key in ("queries", "passages")
    ]
    scores = encoder.similarity(*embeddings)
    loss = loss_fn(scores, inputs["positive_mask"], inputs["ignore_mask"], temperature=TEMPERATURE)
    loss.backward()
    return loss.item(), gradients(encoder)


def test_dropout_masks_are_replayed(tiny_model_dir: Path, monkeypatch) -> None:
    encoder = BiEncoder.from_pretrained(tiny_model_dir, normalize=True)
    dropouts = [module for module in encoder.modules() if isinstance(module, torch.nn.Dropout)]
    assert dropouts
    for module in dropouts:
        module.p = 0.2
    encoder.train()
    inputs = collate(encoder)
    loss_fn = OBJECTIVES["lsepair"].bind()
    torch.manual_seed(7)
    expected_loss, expected = chunked_reference(encoder, inputs, loss_fn, 3)
    torch.manual_seed(7)
    actual_loss, actual = loss_and_gradients(encoder, inputs, loss_fn, 3)
    assert actual_loss == pytest.approx(expected_loss, rel=1e-5)
    assert_same_gradients(actual, expected)

    # the control: without replaying the random state, dropout draws new masks and the gradients differ
    monkeypatch.setattr(grad_cache.RandomState, "replay", lambda self: contextlib.nullcontext())
    torch.manual_seed(7)
    _, unreplayed = loss_and_gradients(encoder, inputs, loss_fn, 3)
    assert any(not torch.allclose(unreplayed[name], expected[name], atol=1e-6) for name in expected)


def test_hook_scales_by_the_outer_gradient(encoder: BiEncoder) -> None:
    """Gradient accumulation and loss scaling multiply the loss: the cached backward must follow."""
    encoder.eval()
    inputs = collate(encoder)
    loss_fn = OBJECTIVES["jointlh"].bind()
    _, expected = loss_and_gradients(encoder, inputs, loss_fn, None)
    encoder.zero_grad(set_to_none=True)
    (batch_loss(encoder, encoder, inputs, loss_fn, TEMPERATURE, grad_cache_chunk=2) * 0.25).backward()
    assert_same_gradients(gradients(encoder), {name: value * 0.25 for name, value in expected.items()})


def test_chunks_drop_padding_beyond_their_longest_text(encoder: BiEncoder) -> None:
    inputs = collate(encoder)
    chunks = split_features(inputs["passages"], 5)
    assert sum(c["input_ids"].shape[0] for c in chunks) == inputs["passages"]["input_ids"].shape[0]
    assert all(c["attention_mask"][:, -1].any() for c in chunks)
    with pytest.raises(ValueError, match="grad_cache_chunk must be positive"):
        batch_loss(encoder, encoder, inputs, OBJECTIVES["lsepair"].bind(), TEMPERATURE, grad_cache_chunk=0)
