"""JointLH as a sentence-transformers loss."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer

from mpretriever.losses.st import _docs
from mpretriever.losses.st.base import MultiPositiveLoss, Similarity, cos_sim


@_docs.fill
class JointLHLoss(MultiPositiveLoss):
    """JointLH: the sum over a query's positives of their InfoNCE losses, ``m * LSE_C(s) - sum_p s_p``.

    Every positive stays in the softmax denominator of the others, so positives compete: training pushes the
    probability mass towards ``1 / m`` on each of the ``m`` positives, false positives included. Passages are
    matched by their text across the whole batch, as in :class:`LSEPairLoss`.

    Args:
        {common_args}
        normalize: divide each query's loss by its number of positives.

    {requirements}

    Recommendations:
        - Use it when every labelled positive is truly and equally relevant (clean, same-grade labels); with LLM
          labels or mixed grades prefer :class:`LSEPairLoss`. The paper found it the most sensitive objective to the
          quality of the positives.

    Relations:
        - With one positive per query it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`.
        - ``mpr train --loss jointlh`` trains the same objective.

    Example:
        ::

            loss = JointLHLoss(model, normalize=True)
            collator = MultiPositiveDataCollator.for_loss(loss, max_positives=3)
            # then SentenceTransformerTrainer(..., loss=loss, data_collator=collator), as for LSEPairLoss
    """

    objective = "jointlh"

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.05,
        similarity_fct: Similarity = cos_sim,
        gather_across_devices: bool = False,
        mini_batch_size: int | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__(
            model, temperature, similarity_fct, gather_across_devices, mini_batch_size, normalize=normalize
        )
