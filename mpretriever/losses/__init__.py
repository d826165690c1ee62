"""Multi-positive contrastive objectives over a ``(B, N)`` score matrix.

Each function takes ``scores``, a boolean ``positive_mask`` and an optional boolean ``ignore_mask`` and returns
the scalar batch loss: the mean over rows with at least one positive. Rand1LH is not a separate function: it is a
data-level policy (one positive sampled per query per epoch, the others ignored) followed by :func:`info_nce`.
"""

from mpretriever.losses.info_nce import info_nce
from mpretriever.losses.joint_lh import joint_lh
from mpretriever.losses.lse_pair import lse_pair
from mpretriever.losses.sum_marg_lh import sum_marg_lh

__all__ = ["info_nce", "joint_lh", "lse_pair", "sum_marg_lh"]
