"""Id-based positive and ignore masks for a whole batch of groups."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mpretriever.data.groups import Group


def batch_columns(groups: Sequence[Group]) -> Tensor:
    """The corpus row of every column of the batch: the groups' passages, concatenated."""
    return torch.tensor([row for group in groups for row in group.passages], dtype=torch.long)


def duplicate_columns(columns: Tensor) -> Tensor:
    """True for every column that repeats a passage already present in an earlier column."""
    positions = torch.arange(columns.numel())
    unique, inverse = torch.unique(columns, return_inverse=True)
    first = torch.full((unique.numel(),), columns.numel(), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return first[inverse] != positions


def rows_tensor(row_sets: Sequence[frozenset[int]]) -> Tensor:
    """``(B, K)`` corpus rows of each set, padded with -1 (so that they can be collated and gathered)."""
    width = max((len(rows) for rows in row_sets), default=0)
    padded = torch.full((len(row_sets), max(width, 1)), -1, dtype=torch.long)
    for i, rows in enumerate(row_sets):
        if rows:
            padded[i, : len(rows)] = torch.tensor(sorted(rows), dtype=torch.long)
    return padded


def masks_for_columns(columns: Tensor, positive_rows: Tensor, ignored_rows: Tensor) -> tuple[Tensor, Tensor]:
    """``(positive_mask, ignore_mask)``, both ``(B, N)`` bool, for queries given by their positive and ignored
    corpus rows (``(B, K)``, -1 padded, see :func:`rows_tensor`) against ``N`` batch columns.

    Column ``c`` is a positive of row ``i`` when its passage is one of query ``i``'s positives, in whichever
    group (or process) it sits. It is ignored in row ``i`` when it is one of query ``i``'s ignored passages, or
    when it is a second copy of a passage already in the batch (in every row).
    """
    duplicates = duplicate_columns(columns)
    positive_mask = torch.stack([torch.isin(columns, rows[rows >= 0]) for rows in positive_rows])
    ignore_mask = torch.stack([torch.isin(columns, rows[rows >= 0]) for rows in ignored_rows]) | duplicates
    return positive_mask & ~ignore_mask, ignore_mask


def build_masks(groups: Sequence[Group], columns: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`masks_for_columns` for a batch of groups (columns: the groups' passages, concatenated)."""
    columns = batch_columns(groups) if columns is None else columns
    return masks_for_columns(
        columns,
        rows_tensor([group.row_positives for group in groups]),
        rows_tensor([group.row_ignored for group in groups]),
    )
