"""SumMargLH: the marginal likelihood of the set of positives."""

from __future__ import annotations

from torch import Tensor

from mpretriever.losses._masking import masked_logsumexp, mean_over_rows_with_positives, prepare_scores


def sum_marg_lh(
    scores: Tensor,
    positive_mask: Tensor,
    ignore_mask: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """SumMargLH: ``LSE_{C_i}(s) - LSE_{P_i}(s)``, minus the log of the softmax mass on all positives.

    The gradient on a positive is ``-pi_p (1 - sum_P p)`` with ``pi`` the softmax over the positives only: the
    strongest positive receives most of the push and weak positives can be ignored. The loss is never divided by
    the number of positives.

    Args:
        scores: ``(B, N)`` similarities of query ``i`` with candidate passage ``c``.
        positive_mask: ``(B, N)`` bool, true for every labelled positive of query ``i`` in the batch.
        ignore_mask: optional ``(B, N)`` bool, true where column ``c`` takes no part in row ``i``.
        temperature: the scores are divided by it.

    Returns:
        The scalar mean over rows that have at least one positive.

    Use it when a query needs only one of its positives ranked high (any relevant passage answers it).
    """
    masked = prepare_scores(scores, positive_mask, ignore_mask, temperature)
    row_losses = masked_logsumexp(masked.logits, masked.candidates) - masked_logsumexp(masked.logits, masked.positives)
    return mean_over_rows_with_positives(row_losses, masked.rows_with_positives)
