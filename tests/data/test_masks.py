"""Id-based masks over a whole batch."""

from __future__ import annotations

import torch

from mpretriever.data import Group, build_masks
from mpretriever.data.masks import batch_columns


def test_labelled_positive_in_another_querys_group_is_a_positive() -> None:
    groups = [
        Group(passages=(1, 2, 3), row_positives=frozenset({1, 5}), row_ignored=frozenset()),
        Group(passages=(4, 5, 6), row_positives=frozenset({4}), row_ignored=frozenset()),
    ]
    positive_mask, ignore_mask = build_masks(groups)
    assert positive_mask.tolist() == [
        [True, False, False, False, True, False],
        [False, False, False, True, False, False],
    ]
    assert not ignore_mask.any()


def test_second_copy_of_a_passage_is_ignored_in_every_row() -> None:
    groups = [
        Group(passages=(1, 2, 9), row_positives=frozenset({1}), row_ignored=frozenset()),
        Group(passages=(3, 9, 1), row_positives=frozenset({3, 1}), row_ignored=frozenset()),
    ]
    positive_mask, ignore_mask = build_masks(groups)
    assert batch_columns(groups).tolist() == [1, 2, 9, 3, 9, 1]
    assert ignore_mask[:, 4].all() and ignore_mask[:, 5].all()
    assert not ignore_mask[:, :4].any()
    assert positive_mask[1].tolist() == [True, False, False, True, False, False], "row 1 keeps the first copy of 1"
    assert not (positive_mask & ignore_mask).any()


def test_rand1lh_unsampled_positives_and_excluded_passages_are_ignored() -> None:
    groups = [
        Group(passages=(1, 7, 8), row_positives=frozenset({1}), row_ignored=frozenset({2, 3})),
        Group(passages=(2, 3, 9), row_positives=frozenset({2}), row_ignored=frozenset()),
    ]
    positive_mask, ignore_mask = build_masks(groups)
    assert ignore_mask[0].tolist() == [False, False, False, True, True, False]
    assert positive_mask[0].tolist() == [True, False, False, False, False, False]
    negatives = ~positive_mask & ~ignore_mask
    assert negatives[0].tolist() == [False, True, True, False, False, True]
    assert positive_mask.dtype == ignore_mask.dtype == torch.bool
