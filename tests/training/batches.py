"""A hand-made training batch with every mask case: several positives per query, a positive of one query in
another query's group, a passage in two groups, an ignored positive (Rand1LH-style) and a query left without
any positive (it takes no part in the loss)."""

from __future__ import annotations

import random
from typing import Any

import datasets

from mpretriever.data.groups import Group, PositivePolicy
from mpretriever.model import BiEncoder
from mpretriever.training.dataset import GroupCollator

CORPUS_SIZE = 40
GROUPS = [
    Group(passages=(0, 1, 10, 11), row_positives=frozenset({0, 1, 20}), row_ignored=frozenset()),
    Group(passages=(20, 12, 13, 14), row_positives=frozenset({20}), row_ignored=frozenset({21})),
    Group(passages=(2, 3, 15, 10), row_positives=frozenset({2, 3, 4}), row_ignored=frozenset({4})),
    Group(passages=(21, 16, 17, 1), row_positives=frozenset({21}), row_ignored=frozenset()),
    Group(passages=(5, 6, 18, 19), row_positives=frozenset({5, 6}), row_ignored=frozenset()),
    Group(passages=(7, 22, 23, 24), row_positives=frozenset({7, 0}), row_ignored=frozenset()),
    Group(passages=(8, 9, 25, 10), row_positives=frozenset({8, 9, 27}), row_ignored=frozenset()),
    Group(passages=(28, 29, 30, 31), row_positives=frozenset({28}), row_ignored=frozenset({28})),  # no positive left
]


def collate(
    encoder: BiEncoder, groups: list[Group] = GROUPS, seed: int = 0, rows: slice = slice(None)
) -> dict[str, Any]:
    """The batch the GroupCollator makes of ``groups[rows]`` (random texts of random lengths, the same for the
    same corpus row or query position whatever ``rows`` selects)."""
    rng = random.Random(seed)
    vocabulary = encoder.tokenizer.vocab_size

    def text_ids(length: int) -> list[int]:
        return [encoder.tokenizer.cls_token_id, *(rng.randrange(5, vocabulary) for _ in range(length))]

    passages = datasets.Dataset.from_dict({"input_ids": [text_ids(rng.randint(3, 24)) for _ in range(CORPUS_SIZE)]})
    queries = [text_ids(rng.randint(2, 8)) for _ in groups]
    collator = GroupCollator(encoder, queries, passages)
    items = [{"index": i, "group": group} for i, group in enumerate(groups)]
    return collator(items[rows])


def single_positive(groups: list[Group] = GROUPS) -> list[Group]:
    """The groups as InfoNCE / Rand1LH see them: one positive per query (its group's first passage), the
    query's other positives ignored."""
    return [
        Group(
            passages=group.passages,
            row_positives=frozenset({group.passages[0]}),
            row_ignored=group.row_ignored | (group.row_positives - {group.passages[0]}),
        )
        for group in groups
    ]


def groups_for(policy: PositivePolicy) -> list[Group]:
    return GROUPS if policy == PositivePolicy.ALL else single_positive()
