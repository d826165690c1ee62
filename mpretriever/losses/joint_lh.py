"""JointLH: the joint likelihood of all labelled positives under one softmax."""

from __future__ import annotations

from torch import Tensor

from mpretriever.losses._masking import masked_logsumexp, mean_over_rows_with_positives, prepare_scores


def joint_lh(
    scores: Tensor,
    positive_mask: Tensor,
    ignore_mask: Tensor | None = None,
    temperature: float = 1.0,
    normalize: bool = False,
) -> Tensor:
    """JointLH: ``m_i * LSE_{C_i}(s) - sum_{p in P_i} s_p``, the sum of the InfoNCE losses of every positive.

    Each positive stays in the denominator of the others, so positives compete: the gradient
    ``dL/ds_d = m p_d - [d in P]`` has its fixed point at ``p_p = 1 / m`` for every positive. It spreads the
    probability mass uniformly over all labelled positives, false ones included.

    Args:
        scores: ``(B, N)`` similarities of query ``i`` with candidate passage ``c``.
        positive_mask: ``(B, N)`` bool, true for every labelled positive of query ``i`` in the batch.
        ignore_mask: optional ``(B, N)`` bool, true where column ``c`` takes no part in row ``i``.
        temperature: the scores are divided by it.
        normalize: divide each row's loss by its number of positives ``m_i``.

    Returns:
        The scalar mean over rows that have at least one positive.

    Use it when every labelled positive is truly and equally relevant; it is sensitive to noisy positives.
    """
    masked = prepare_scores(scores, positive_mask, ignore_mask, temperature)
    num_positives = masked.num_positives.to(masked.logits.dtype)
    positive_sum = masked.logits.masked_fill(~masked.positives, 0.0).sum(dim=-1)
    row_losses = num_positives * masked_logsumexp(masked.logits, masked.candidates) - positive_sum
    if normalize:
        row_losses = row_losses / num_positives.clamp(min=1.0)
    return mean_over_rows_with_positives(row_losses, masked.rows_with_positives)
