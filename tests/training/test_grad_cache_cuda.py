"""GradCache on a CUDA device (issue 11, part 5): under bf16 and fp16 autocast the cached gradients are as close
to the uncached ones as mixed precision itself allows, and dropout masks drawn by the CUDA generator are replayed.
Skipped without a CUDA device; CPU runs of the same properties are in test_grad_cache.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from mpretriever.model import BiEncoder
from mpretriever.training import grad_cache
from mpretriever.training.objectives import OBJECTIVES
from mpretriever.training.step import batch_loss
from tests.training.batches import collate, groups_for
from tests.training.test_grad_cache import (
    TEMPERATURE,
    assert_same_gradients,
    chunked_reference,
    gradients,
    loss_and_gradients,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

LOSS_SCALE = 2.0**12
"""Scales the fp16 loss as the Trainer's GradScaler would, so that small activation gradients do not underflow."""


def on_cuda(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cuda()
    if isinstance(value, dict):
        return {key: on_cuda(item) for key, item in value.items()}
    return value


@pytest.fixture
def cuda_encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_model_dir, normalize=True).cuda()


def mixed_precision_gradients(
    encoder: BiEncoder, inputs: dict[str, Any], objective: str, dtype: torch.dtype | None, chunk: int | None
) -> dict[str, torch.Tensor]:
    """The parameter gradients of one step, under autocast to ``dtype`` (``None``: float32), as the Trainer runs
    it: the forward inside autocast, the backward of the scaled loss outside, the gradients unscaled."""

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()

    encoder.zero_grad(set_to_none=True)
    with autocast():
        loss = batch_loss(
            encoder,
            encoder,
            inputs,
            OBJECTIVES[objective].bind(),
            TEMPERATURE,
            grad_cache_chunk=chunk,
            autocast=autocast,
        )
    (loss * LOSS_SCALE).backward()
    return {name: gradient / LOSS_SCALE for name, gradient in gradients(encoder).items()}


def largest_difference(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, float]:
    assert actual.keys() == expected.keys() and len(expected) > 10
    return {name: (actual[name] - expected[name]).abs().max().item() for name in expected}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("objective", ["lsepair", "jointlh", "infonce"])
def test_cached_gradients_under_autocast_are_within_mixed_precision_noise(
    objective: str, dtype: torch.dtype, cuda_encoder: BiEncoder
) -> None:
    """Chunked re-embedding under autocast changes rounding, not the gradient: its distance to the uncached
    autocast gradient stays within three times the distance of that gradient to float32's (mixed precision's own
    noise on this batch), tensor by tensor."""
    cuda_encoder.eval()
    inputs = on_cuda(collate(cuda_encoder, groups_for(OBJECTIVES[objective].policy)))
    exact = mixed_precision_gradients(cuda_encoder, inputs, objective, None, None)
    uncached = mixed_precision_gradients(cuda_encoder, inputs, objective, dtype, None)
    cached = mixed_precision_gradients(cuda_encoder, inputs, objective, dtype, 3)
    precision_noise = largest_difference(uncached, exact)
    cache_error = largest_difference(cached, uncached)
    for name, error in cache_error.items():
        scale = exact[name].abs().max().item()
        assert error <= 3 * precision_noise[name] + 1e-4 * scale + 1e-8, (name, error, precision_noise[name], scale)


def test_cuda_dropout_masks_are_replayed(cuda_encoder: BiEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropout on the GPU draws from the CUDA generator: GradCache must capture and replay its state per chunk."""
    dropouts = [module for module in cuda_encoder.modules() if isinstance(module, torch.nn.Dropout)]
    assert dropouts
    for module in dropouts:
        module.p = 0.2
    cuda_encoder.train()
    inputs = on_cuda(collate(cuda_encoder))
    loss_fn = OBJECTIVES["lsepair"].bind()

    def cached_step() -> tuple[float, dict[str, torch.Tensor]]:
        return loss_and_gradients(cuda_encoder, inputs, loss_fn, 3)

    def seeded(step: Callable[[], Any]) -> Any:
        torch.manual_seed(7)  # seeds the CUDA generators too
        return step()

    expected_loss, expected = seeded(lambda: chunked_reference(cuda_encoder, inputs, loss_fn, 3))
    actual_loss, actual = seeded(cached_step)
    assert grad_cache.RandomState.capture().cuda, "the CUDA generator state was not captured"
    assert actual_loss == pytest.approx(expected_loss, rel=1e-5)
    assert_same_gradients(actual, expected)

    # the control: without the replay, the re-embedding draws new masks and the gradients differ
    monkeypatch.setattr(grad_cache.RandomState, "replay", lambda self: contextlib.nullcontext())
    _, unreplayed = seeded(cached_step)
    assert any(not torch.allclose(unreplayed[name], expected[name], atol=1e-6) for name in expected)
