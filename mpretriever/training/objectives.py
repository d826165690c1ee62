"""The objectives ``mpr train --loss`` accepts: a loss function plus the positive-sampling policy it needs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from mpretriever.data.groups import PositivePolicy
from mpretriever.losses import info_nce, joint_lh, lse_pair, sum_marg_lh

LossFn = Callable[..., Tensor]


@dataclass(frozen=True)
class Objective:
    """A training objective: ``loss(scores, positive_mask, ignore_mask, temperature=..., **options)``."""

    name: str
    loss: LossFn
    policy: PositivePolicy
    options: frozenset[str] = frozenset()
    description: str = ""

    def bind(self, **options: Any) -> LossFn:
        """The loss with its options fixed; options left at ``None`` keep the function's defaults."""
        given = {key: value for key, value in options.items() if value is not None}
        unknown = set(given) - self.options
        if unknown:
            raise ValueError(
                f"loss '{self.name}' does not take {', '.join(sorted(unknown))}"
                + (f" (it takes: {', '.join(sorted(self.options))})" if self.options else "")
            )
        return functools.partial(self.loss, **given)


OBJECTIVES: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective(
            "infonce",
            info_nce,
            PositivePolicy.FIRST,
            description="single positive (the first, highest-grade one), other positives ignored",
        ),
        Objective(
            "rand1lh",
            info_nce,
            PositivePolicy.ONE_RANDOM,
            description="InfoNCE on one positive drawn per query per epoch, the others ignored",
        ),
        Objective(
            "jointlh",
            joint_lh,
            PositivePolicy.ALL,
            frozenset({"normalize"}),
            description="joint likelihood of all positives; they compete for the softmax mass",
        ),
        Objective(
            "summarglh", sum_marg_lh, PositivePolicy.ALL, description="-log of the total softmax mass on the positives"
        ),
        Objective(
            "lsepair",
            lse_pair,
            PositivePolicy.ALL,
            frozenset({"normalize", "positive_agg", "negative_agg"}),
            description="pairwise log-sum-exp of every negative against every positive (most robust)",
        ),
    )
}


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(OBJECTIVES)}") from None
