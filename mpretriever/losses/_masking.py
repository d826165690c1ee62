"""Shared masking helpers for the multi-positive objectives.

Every objective works on the same three inputs: a ``(B, N)`` score matrix, a boolean ``positive_mask`` and an
optional boolean ``ignore_mask``. These helpers validate them, apply the temperature, and split each row into
positives, negatives and candidates. Masked entries are filled with ``torch.finfo(dtype).min`` (never ``-inf``)
so that gradients stay finite even for rows that have no positive or no negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MaskedScores:
    """Temperature-scaled scores with the row-wise partition into positives and negatives."""

    logits: Tensor
    positives: Tensor
    negatives: Tensor

    @property
    def candidates(self) -> Tensor:
        return self.positives | self.negatives

    @property
    def num_positives(self) -> Tensor:
        return self.positives.sum(dim=-1)

    @property
    def rows_with_positives(self) -> Tensor:
        return self.num_positives > 0

    @property
    def fill_value(self) -> float:
        return torch.finfo(self.logits.dtype).min


def prepare_scores(
    scores: Tensor,
    positive_mask: Tensor,
    ignore_mask: Tensor | None,
    temperature: float,
) -> MaskedScores:
    """Validate the inputs, scale by ``1 / temperature`` and partition the columns of every row.

    Scores are computed in float32 at least, whatever the autocast dtype, so that ``finfo.min`` fills and
    log-sum-exps behave the same under mixed precision. An ignored column is neither positive nor negative, even
    when it is also marked positive.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be a (B, N) matrix, got shape {tuple(scores.shape)}")
    if positive_mask.shape != scores.shape:
        raise ValueError(
            f"positive_mask shape {tuple(positive_mask.shape)} does not match scores shape {tuple(scores.shape)}"
        )
    if ignore_mask is not None and ignore_mask.shape != scores.shape:
        raise ValueError(
            f"ignore_mask shape {tuple(ignore_mask.shape)} does not match scores shape {tuple(scores.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")

    dtype = torch.promote_types(scores.dtype, torch.float32)
    logits = scores.to(dtype) / temperature
    positives = positive_mask.to(torch.bool)
    if ignore_mask is None:
        negatives = ~positives
    else:
        kept = ~ignore_mask.to(torch.bool)
        positives = positives & kept
        negatives = ~positives & kept
    return MaskedScores(logits=logits, positives=positives, negatives=negatives)


def masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise log-sum-exp over the entries where ``mask`` is true (about ``finfo.min`` for an empty row)."""
    filled = values.masked_fill(~mask, torch.finfo(values.dtype).min)
    return torch.logsumexp(filled, dim=-1)


def masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise maximum over the entries where ``mask`` is true (``finfo.min`` for an empty row)."""
    filled = values.masked_fill(~mask, torch.finfo(values.dtype).min)
    return filled.amax(dim=-1)


def mean_over_rows_with_positives(row_losses: Tensor, rows_with_positives: Tensor) -> Tensor:
    """Average the per-row losses over the rows that have at least one positive.

    A batch without any positive returns a zero that is still attached to the graph, so ``backward()`` works and
    produces zero gradients instead of NaN.
    """
    kept = torch.where(rows_with_positives, row_losses, torch.zeros_like(row_losses))
    count = rows_with_positives.sum().clamp(min=1)
    return kept.sum() / count
