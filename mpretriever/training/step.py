"""The loss of one training batch: embeddings, cross-process passages and masks, objective, optional GradCache.

Kept apart from the Trainer so that a test can run it on plain modules, in one process or under DDP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch
from torch import Tensor

from mpretriever.data.masks import masks_for_columns
from mpretriever.training.distributed import all_sum, gather_rows, is_distributed, world_size
from mpretriever.training.grad_cache import CachedSide, Embedder, backward_hook
from mpretriever.training.objectives import LossFn


class Scorer(Protocol):
    """What gives the score matrix: a :class:`~mpretriever.model.BiEncoder`, or any object with ``similarity``."""

    def similarity(self, queries: Tensor, passages: Tensor) -> Tensor: ...


def _scored_loss(
    scorer: Scorer,
    query_embeddings: Tensor,
    passage_embeddings: Tensor,
    inputs: dict[str, Any],
    loss_fn: LossFn,
    temperature: float,
    gather: bool,
) -> Tensor:
    """The objective of the local queries against the passages of every process (only the local ones without
    ``gather``), scaled so that DDP's gradient average equals the gradient of the mean over all processes' rows."""
    if not is_distributed():
        scores = scorer.similarity(query_embeddings, passage_embeddings)
        return loss_fn(scores, inputs["positive_mask"], inputs["ignore_mask"], temperature=temperature)
    if gather:
        all_passages = gather_rows(passage_embeddings, differentiable=True)
        all_columns = gather_rows(inputs["columns"], differentiable=False)
        positive_mask, ignore_mask = masks_for_columns(
            all_columns.cpu(), inputs["positive_rows"].cpu(), inputs["ignored_rows"].cpu()
        )
        positive_mask, ignore_mask = positive_mask.to(all_passages.device), ignore_mask.to(all_passages.device)
    else:
        all_passages, positive_mask, ignore_mask = passage_embeddings, inputs["positive_mask"], inputs["ignore_mask"]
    scores = scorer.similarity(query_embeddings, all_passages)
    loss = loss_fn(scores, positive_mask, ignore_mask, temperature=temperature)
    # The objectives average over rows with a positive: weigh this process's mean by its share of those rows.
    local_rows = int(positive_mask.any(dim=1).sum().item())
    global_rows = all_sum(local_rows, scores.device)
    return loss * (local_rows * world_size() / max(global_rows, 1))


def batch_loss(
    model: Embedder,
    scorer: Scorer,
    inputs: dict[str, Any],
    loss_fn: LossFn,
    temperature: float,
    grad_cache_chunk: int | None = None,
    autocast: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    gather: bool = True,
) -> Tensor:
    """The training loss of a collated batch (see :class:`mpretriever.training.dataset.GroupCollator`).

    ``model`` embeds padded features: what the Trainer trains (the encoder itself or its DDP wrapper); ``scorer``
    gives the similarity. Under DDP, queries are scored against the passages of every process unless ``gather``
    is false. With ``grad_cache_chunk``, texts are embedded ``grad_cache_chunk`` at a time and the returned loss
    carries a hook that back-propagates through the encoder chunk by chunk (see
    :mod:`mpretriever.training.grad_cache`).
    """
    if grad_cache_chunk is None:
        query_embeddings = model(inputs["queries"])
        passage_embeddings = model(inputs["passages"])
        return _scored_loss(scorer, query_embeddings, passage_embeddings, inputs, loss_fn, temperature, gather)

    if grad_cache_chunk < 1:
        raise ValueError(f"grad_cache_chunk must be positive, got {grad_cache_chunk}")
    sides = [CachedSide.embed(model, inputs[key], grad_cache_chunk) for key in ("queries", "passages")]
    if not torch.is_grad_enabled():  # evaluation: the chunked embeddings' loss, nothing to back-propagate
        embeddings = [side.embeddings.detach() for side in sides]
        return _scored_loss(scorer, *embeddings, inputs, loss_fn, temperature, gather)
    loss = _scored_loss(scorer, sides[0].embeddings, sides[1].embeddings, inputs, loss_fn, temperature, gather)
    gradients = list(torch.autograd.grad(loss, [side.embeddings for side in sides]))
    cached = loss.detach().requires_grad_()
    cached.register_hook(backward_hook(model, sides, gradients, autocast))
    return cached
