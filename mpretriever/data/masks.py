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


def _rows_in(columns: Tensor, rows: frozenset[int]) -> Tensor:
    if not rows:
        return torch.zeros_like(columns, dtype=torch.bool)
    return torch.isin(columns, torch.tensor(sorted(rows), dtype=torch.long))


def build_masks(groups: Sequence[Group], columns: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(positive_mask, ignore_mask)``, both ``(B, N)`` bool, for ``B`` groups and ``N`` batch columns.

    Column ``c`` is a positive of row ``i`` when its passage is one of query ``i``'s positives, in whichever
    group it sits. It is ignored in row ``i`` when it is one of query ``i``'s ignored passages, or when it is a
    second copy of a passage already in the batch (in every row).
    """
    columns = batch_columns(groups) if columns is None else columns
    duplicates = duplicate_columns(columns)
    positive_mask = torch.stack([_rows_in(columns, group.row_positives) for group in groups])
    ignore_mask = torch.stack([_rows_in(columns, group.row_ignored) for group in groups]) | duplicates
    return positive_mask & ~ignore_mask, ignore_mask
