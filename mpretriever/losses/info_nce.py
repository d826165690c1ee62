"""InfoNCE with exactly one positive per row: the classic single-positive contrastive loss."""

from __future__ import annotations

from torch import Tensor

from mpretriever.losses._masking import masked_logsumexp, mean_over_rows_with_positives, prepare_scores


def info_nce(
    scores: Tensor,
    positive_mask: Tensor,
    ignore_mask: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """InfoNCE: ``LSE_{C_i}(s) - s_p`` for the single positive ``p`` of every row.

    Args:
        scores: ``(B, N)`` similarities of query ``i`` with candidate passage ``c``.
        positive_mask: ``(B, N)`` bool, true where column ``c`` is the positive of query ``i``. Every row must
            have at most one positive; rows with none are dropped from the mean.
        ignore_mask: optional ``(B, N)`` bool, true where column ``c`` takes no part in row ``i`` (duplicates,
            padding, or the other labelled positives of the query that were not sampled).
        temperature: the scores are divided by it.

    Returns:
        The scalar mean over rows that have a positive.

    Use it when each query has one positive (DPR-style data). With several labelled positives, sample one per
    query (Rand1LH) and ignore the others, or use a multi-positive objective such as :func:`lse_pair`.

    Raises:
        ValueError: if a row has more than one (non-ignored) positive.
    """
    masked = prepare_scores(scores, positive_mask, ignore_mask, temperature)
    if bool((masked.num_positives > 1).any()):
        raise ValueError(
            "info_nce needs at most one positive per row; mark the other positives in ignore_mask "
            "(Rand1LH) or use a multi-positive loss (joint_lh, sum_marg_lh, lse_pair)"
        )
    positive_logit = masked.logits.masked_fill(~masked.positives, 0.0).sum(dim=-1)
    row_losses = masked_logsumexp(masked.logits, masked.candidates) - positive_logit
    return mean_over_rows_with_positives(row_losses, masked.rows_with_positives)
