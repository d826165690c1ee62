"""The loss of one training batch: embeddings, cross-process passages and masks, objective, optional GradCache.

Kept apart from the Trainer so that a test can run it on plain modules, in one process or under DDP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

from mpretriever.data.masks import masks_for_columns
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.training.distributed import all_sum, gather_rows, is_distributed, world_size
from mpretriever.training.grad_cache import CachedSide, backward_hook
from mpretriever.training.objectives import LossFn


def _scored_loss(
    encoder: BiEncoder,
    query_embeddings: Tensor,
    passage_embeddings: Tensor,
    inputs: dict[str, Any],
    loss_fn: LossFn,
    temperature: float,
) -> Tensor:
    """The objective of the local queries against the passages of every process, scaled so that DDP's gradient
    average equals the gradient of the single-process loss on the concatenated batch."""
    if not is_distributed():
        scores = encoder.similarity(query_embeddings, passage_embeddings)
        return loss_fn(scores, inputs["positive_mask"], inputs["ignore_mask"], temperature=temperature)
    all_passages = gather_rows(passage_embeddings, differentiable=True)
    all_columns = gather_rows(inputs["columns"], differentiable=False)
    positive_mask, ignore_mask = masks_for_columns(
        all_columns.cpu(), inputs["positive_rows"].cpu(), inputs["ignored_rows"].cpu()
    )
    positive_mask, ignore_mask = positive_mask.to(all_passages.device), ignore_mask.to(all_passages.device)
    scores = encoder.similarity(query_embeddings, all_passages)
    loss = loss_fn(scores, positive_mask, ignore_mask, temperature=temperature)
    # The objectives average over rows with a positive: weigh this process's mean by its share of those rows.
    local_rows = int(positive_mask.any(dim=1).sum().item())
    global_rows = all_sum(local_rows, scores.device)
    return loss * (local_rows * world_size() / max(global_rows, 1))


def batch_loss(
    model: nn.Module,
    encoder: BiEncoder,
    inputs: dict[str, Any],
    loss_fn: LossFn,
    temperature: float,
    grad_cache_chunk: int | None = None,
    autocast: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
) -> Tensor:
    """The training loss of a collated batch (see :class:`mpretriever.training.dataset.GroupCollator`).

    ``model`` is what the Trainer trains (``encoder`` itself or its DDP wrapper); ``encoder`` gives the
    similarity. With ``grad_cache_chunk``, texts are embedded ``grad_cache_chunk`` at a time and the returned
    loss carries a hook that back-propagates through the encoder chunk by chunk (see
    :mod:`mpretriever.training.grad_cache`).
    """
    if grad_cache_chunk is None:
        query_embeddings = model(inputs["queries"])
        passage_embeddings = model(inputs["passages"])
        return _scored_loss(encoder, query_embeddings, passage_embeddings, inputs, loss_fn, temperature)

    if grad_cache_chunk < 1:
        raise ValueError(f"grad_cache_chunk must be positive, got {grad_cache_chunk}")
    sides = [CachedSide.embed(model, inputs[key], grad_cache_chunk) for key in ("queries", "passages")]
    loss = _scored_loss(encoder, sides[0].embeddings, sides[1].embeddings, inputs, loss_fn, temperature)
    gradients = list(torch.autograd.grad(loss, [side.embeddings for side in sides]))
    cached = loss.detach().requires_grad_()
    cached.register_hook(backward_hook(model, sides, gradients, autocast))
    return cached
