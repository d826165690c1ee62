"""InfoNCE and Rand1LH (single-positive baselines) as sentence-transformers losses over multi-positive data."""

from __future__ import annotations

from mpretriever.losses.st import _docs
from mpretriever.losses.st.base import MultiPositiveLoss


@_docs.fill
class InfoNCELoss(MultiPositiveLoss):
    """InfoNCE on each query's first listed positive; its other positives are ignored, never negatives.

    The single-positive baseline on multi-positive data: the collator encodes only the first positive of each list
    (put the best one first, as ``mpr export`` does by grade), and the query's other positives take no part in its
    row wherever they appear in the batch, so they are not false negatives.

    Args:
        {common_args}

    {requirements}

    Recommendations:
        - A baseline to compare the multi-positive losses with on the same data.

    Relations:
        - With one positive per query it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`;
          with several it differs from MNRL on the flattened pairs, which makes a query's other positives negatives.
        - :class:`Rand1LHLoss` draws the positive at random instead of taking the first.
        - ``mpr train --loss infonce``.

    Example:
        ::

            loss = InfoNCELoss(model)
            collator = MultiPositiveDataCollator.for_loss(loss)
    """

    objective = "infonce"


@_docs.fill
class Rand1LHLoss(MultiPositiveLoss):
    """Rand1LH: InfoNCE on one positive drawn at random per query and batch; its other positives are ignored.

    Over the epochs every positive is used, one at a time, and the unsampled ones are never negatives. The paper's
    reliable baseline. (``mpr train --loss rand1lh`` rotates through a fixed permutation per epoch; here the draw
    is the collator's, a fresh one in every batch.)

    Args:
        {common_args}

    {requirements}

    Recommendations:
        - The safe choice when the positives' quality is unknown; compare it with :class:`LSEPairLoss`.

    Relations:
        - With one positive per query it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`.

    Example:
        ::

            loss = Rand1LHLoss(model)
            collator = MultiPositiveDataCollator.for_loss(loss, seed=7)
    """

    objective = "rand1lh"
