"""Group building: which passages a query brings to the batch, and which of them count as its positives.

Everything here works on corpus row numbers. Every random draw comes from a generator seeded by
``(seed, epoch, example index)``, so a group does not depend on the order examples are visited, on the number
of data-loader workers, or on whether the run was resumed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class PositivePolicy(str, Enum):
    """How a query's positives enter its group and its row of the score matrix."""

    ALL = "all"
    """Multi-positive objectives: up to ``max_positives`` positives in the group, rotating through all of them
    across epochs; every labelled positive of the query in the batch is a positive of its row."""

    FIRST = "first"
    """Single-positive InfoNCE: always the query's first (highest-grade) positive; the others are ignored."""

    ONE_RANDOM = "one-random"
    """Rand1LH: one positive per epoch, rotating through a seeded permutation of all positives so that every
    positive is used once every ``m`` epochs; the unsampled positives are ignored, never negatives."""


@dataclass(frozen=True)
class IndexedExample:
    """A training example in corpus rows: positives (best grade first), excluded rows and hard negatives."""

    positives: tuple[int, ...]
    excluded: tuple[int, ...] = ()
    hard_negatives: tuple[int, ...] = ()


@dataclass(frozen=True)
class Group:
    """What one query contributes to a batch.

    ``passages`` are the ``group_size`` rows encoded for this query (sampled positives first). ``row_positives``
    and ``row_ignored`` are matched by id against every column of the batch, not only this group's.
    """

    passages: tuple[int, ...]
    row_positives: frozenset[int]
    row_ignored: frozenset[int]


class GroupBuilder:
    """Build the group of a query for an epoch.

    Args:
        group_size: passages per query, positives included; at least 2 (one positive, one negative slot).
        max_positives: at most this many positives per group (at most ``group_size - 1``).
        policy: see :class:`PositivePolicy`.
        corpus_size: rows to draw random negatives from when a query has no hard negatives.
        seed: base seed of every draw.
    """

    def __init__(
        self,
        corpus_size: int,
        group_size: int = 8,
        max_positives: int = 4,
        policy: PositivePolicy = PositivePolicy.ALL,
        seed: int = 42,
    ) -> None:
        if group_size < 2:
            raise ValueError(f"group_size must be at least 2 (a positive and a negative), got {group_size}")
        if max_positives < 1:
            raise ValueError(f"max_positives must be at least 1, got {max_positives}")
        if corpus_size < 2:
            raise ValueError(f"the corpus needs at least 2 passages to draw negatives, got {corpus_size}")
        self.corpus_size = corpus_size
        self.group_size = group_size
        self.max_positives = max_positives
        self.policy = PositivePolicy(policy)
        self.seed = seed

    def _rng(self, *key: int) -> random.Random:
        return random.Random("-".join(map(str, (self.seed, *key))))

    def _positive_window(self, positives: tuple[int, ...], index: int, epoch: int) -> tuple[int, ...]:
        if self.policy is PositivePolicy.FIRST:
            return positives[:1]
        take = 1 if self.policy is PositivePolicy.ONE_RANDOM else min(self.max_positives, self.group_size - 1)
        if len(positives) <= take:
            return positives
        order = list(positives)
        self._rng(index).shuffle(order)  # one permutation per query, fixed across epochs
        start = (epoch * take) % len(order)
        return tuple(order[(start + offset) % len(order)] for offset in range(take))

    def _negatives(self, example: IndexedExample, count: int, rng: random.Random) -> list[int]:
        pool = example.hard_negatives
        if pool:
            return rng.sample(pool, count) if len(pool) >= count else rng.choices(pool, k=count)
        labelled = set(example.positives) | set(example.excluded)
        if len(labelled) >= self.corpus_size:
            raise ValueError("every corpus passage is labelled for this query: no negative can be drawn")
        negatives: list[int] = []
        while len(negatives) < count:
            row = rng.randrange(self.corpus_size)
            if row not in labelled:
                negatives.append(row)
        return negatives

    def build(self, example: IndexedExample, index: int, epoch: int) -> Group:
        """The group of example number ``index`` at ``epoch``."""
        if not example.positives:
            raise ValueError(f"example {index} has no positive")
        sampled = self._positive_window(example.positives, index, epoch)
        negatives = self._negatives(example, self.group_size - len(sampled), self._rng(epoch, index))
        if self.policy is PositivePolicy.ALL:
            row_positives = frozenset(example.positives)
            row_ignored = frozenset(example.excluded)
        else:
            row_positives = frozenset(sampled)
            row_ignored = frozenset(example.excluded) | (frozenset(example.positives) - row_positives)
        return Group(passages=(*sampled, *negatives), row_positives=row_positives, row_ignored=row_ignored)
