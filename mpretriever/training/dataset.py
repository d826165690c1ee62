"""The training dataset (one item per query) and the collator that turns items into a scored batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
from torch import Tensor
from torch.utils.data import Dataset

from mpretriever.data.groups import Group, GroupBuilder, IndexedExample
from mpretriever.data.masks import batch_columns, masks_for_columns, rows_tensor
from mpretriever.model.bi_encoder import BiEncoder


class GroupedQueries(Dataset):
    """Item ``i`` is query ``i`` with its group for the current epoch (set with :meth:`set_epoch`)."""

    def __init__(self, examples: Sequence[IndexedExample], builder: GroupBuilder) -> None:
        self.examples = list(examples)
        self.builder = builder
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"index": index, "group": self.builder.build(self.examples[index], index, self.epoch)}


class GroupCollator:
    """Pads the queries and the groups' passages of a batch and builds its id-based masks.

    The corpus rows behind the masks (``columns``, ``positive_rows``, ``ignored_rows``) travel with the batch, so
    that distributed training can rebuild the masks against the passages of every process.
    """

    def __init__(self, model: BiEncoder, query_tokens: Sequence[list[int]], passage_tokens: datasets.Dataset) -> None:
        self.model = model
        self.query_tokens = query_tokens
        self.passage_tokens = passage_tokens

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor | dict[str, Tensor]]:
        groups: list[Group] = [item["group"] for item in items]
        columns = batch_columns(groups)
        positive_rows = rows_tensor([group.row_positives for group in groups])
        ignored_rows = rows_tensor([group.row_ignored for group in groups])
        positive_mask, ignore_mask = masks_for_columns(columns, positive_rows, ignored_rows)
        passage_ids = self.passage_tokens[columns.tolist()]["input_ids"]
        return {
            "queries": self.model.pad([self.query_tokens[item["index"]] for item in items]),
            "passages": self.model.pad(passage_ids),
            "positive_mask": positive_mask,
            "ignore_mask": ignore_mask,
            "columns": columns,
            "positive_rows": positive_rows,
            "ignored_rows": ignored_rows,
        }
