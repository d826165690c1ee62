"""LSEPair: a smooth pairwise ranking loss between every positive and every negative."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from mpretriever.losses._masking import (
    masked_logsumexp,
    masked_max,
    mean_over_rows_with_positives,
    prepare_scores,
)

PositiveAggregation = Literal["all", "min", "max"]
NegativeAggregation = Literal["all", "max"]


def lse_pair(
    scores: Tensor,
    positive_mask: Tensor,
    ignore_mask: Tensor | None = None,
    temperature: float = 1.0,
    normalize: bool = False,
    positive_agg: PositiveAggregation = "all",
    negative_agg: NegativeAggregation = "all",
) -> Tensor:
    """LSEPair: ``softplus(LSE_{N_i}(s) + LSE_{P_i}(-s)) = log(1 + sum_n sum_p exp(s_n - s_p))``.

    Every positive is compared with every negative; the row's own positives are never negatives of each other,
    so positives do not compete. With ``w = Z / (1 + Z)`` and ``Z = sum exp(s_n - s_p)``, the gradient is
    ``w * softmax_N(s)`` on negatives and ``-w * softmin_P(s)`` on positives: the total push on the positives
    stays below 1 per row and goes to the weakest positive and the hardest negatives. The paper found it the most
    robust objective across label regimes (LLM-only positives and human + LLM mixtures).

    Args:
        scores: ``(B, N)`` similarities of query ``i`` with candidate passage ``c``.
        positive_mask: ``(B, N)`` bool, true for every labelled positive of query ``i`` in the batch.
        ignore_mask: optional ``(B, N)`` bool, true where column ``c`` takes no part in row ``i``.
        temperature: the scores are divided by it. With cosine similarity use about 0.02-0.05; unscaled cosine
            makes LSEPair collapse.
        normalize: divide each row's loss by its number of positives ``m_i``.
        positive_agg: ``"all"`` (``LSE(-s_p)``), ``"min"`` (only the weakest positive, ``-min s_p``) or
            ``"max"`` (only the strongest, ``-max s_p``).
        negative_agg: ``"all"`` (``LSE(s_n)``) or ``"max"`` (only the hardest negative).

    Returns:
        The scalar mean over rows that have at least one positive.
    """
    if positive_agg not in ("all", "min", "max"):
        raise ValueError(f"positive_agg must be 'all', 'min' or 'max', got {positive_agg!r}")
    if negative_agg not in ("all", "max"):
        raise ValueError(f"negative_agg must be 'all' or 'max', got {negative_agg!r}")
    masked = prepare_scores(scores, positive_mask, ignore_mask, temperature)
    logits = masked.logits

    if positive_agg == "all":
        positive_term = masked_logsumexp(-logits, masked.positives)
    elif positive_agg == "min":
        positive_term = masked_max(-logits, masked.positives)
    else:
        positive_term = -masked_max(logits, masked.positives)

    if negative_agg == "all":
        negative_term = masked_logsumexp(logits, masked.negatives)
    else:
        negative_term = masked_max(logits, masked.negatives)

    row_losses = F.softplus(negative_term + positive_term)
    if normalize:
        row_losses = row_losses / masked.num_positives.to(logits.dtype).clamp(min=1.0)
    return mean_over_rows_with_positives(row_losses, masked.rows_with_positives)
