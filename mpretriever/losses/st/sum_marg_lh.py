"""SumMargLH as a sentence-transformers loss."""

from __future__ import annotations

from mpretriever.losses.st import _docs
from mpretriever.losses.st.base import MultiPositiveLoss


@_docs.fill
class SumMargLHLoss(MultiPositiveLoss):
    """SumMargLH: minus the log of the softmax mass on all of a query's positives, ``LSE_C(s) - LSE_P(s)``.

    The strongest positive receives most of the gradient, so weak positives can be left behind; the loss is never
    divided by the number of positives. Passages are matched by their text across the whole batch, as in
    :class:`LSEPairLoss`.

    Args:
        {common_args}

    {requirements}

    Recommendations:
        - Good for recall when the positives are clean; like JointLH it is sensitive to false positives. With LLM
          labels or mixed grades prefer :class:`LSEPairLoss`.

    Relations:
        - With one positive per query it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`.
        - ``mpr train --loss summarglh`` trains the same objective.

    Example:
        ::

            loss = SumMargLHLoss(model, mini_batch_size=16)  # GradCache
            collator = MultiPositiveDataCollator.for_loss(loss)
            # then SentenceTransformerTrainer(..., loss=loss, data_collator=collator), as for LSEPairLoss
    """

    objective = "summarglh"
