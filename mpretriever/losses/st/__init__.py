"""mpretriever's objectives as sentence-transformers losses, for ``SentenceTransformerTrainer``.

Each loss trains on rows ``(query, [positive, ...], [negative, ...])`` collated by
:class:`MultiPositiveDataCollator`, which builds the id-based positive and ignore masks that ``mpr train`` uses::

    loss = LSEPairLoss(model)
    trainer = SentenceTransformerTrainer(
        model=model, train_dataset=dataset, loss=loss, data_collator=MultiPositiveDataCollator.for_loss(loss)
    )
"""

from mpretriever.losses.st.base import MultiPositiveLoss
from mpretriever.losses.st.collator import MultiPositiveDataCollator, text_key
from mpretriever.losses.st.info_nce import InfoNCELoss, Rand1LHLoss
from mpretriever.losses.st.joint_lh import JointLHLoss
from mpretriever.losses.st.lse_pair import LSEPairLoss
from mpretriever.losses.st.sum_marg_lh import SumMargLHLoss

__all__ = [
    "InfoNCELoss",
    "JointLHLoss",
    "LSEPairLoss",
    "MultiPositiveDataCollator",
    "MultiPositiveLoss",
    "Rand1LHLoss",
    "SumMargLHLoss",
    "text_key",
]
