"""Data: BEIR loading and name resolution, training examples, groups and id-based masks."""

from typing import Any

from mpretriever.data.beir import BeirDataset, Judgement, load_qrels, passage_text
from mpretriever.data.errors import DataFormatError
from mpretriever.data.examples import (
    LabelConflict,
    LabelFilter,
    LabelledPassage,
    MergedQrels,
    TrainingExample,
    build_examples,
    merge_qrels,
)
from mpretriever.data.groups import Group, GroupBuilder, IndexedExample, PositivePolicy
from mpretriever.data.negatives import load_negatives
from mpretriever.data.resolve import DatasetNotFoundError, resolve_dataset

__all__ = [
    "BeirDataset",
    "DataFormatError",
    "DatasetNotFoundError",
    "Group",
    "GroupBuilder",
    "IndexedExample",
    "Judgement",
    "LabelConflict",
    "LabelFilter",
    "LabelledPassage",
    "MergedQrels",
    "PositivePolicy",
    "TrainingExample",
    "build_examples",
    "build_masks",
    "load_negatives",
    "load_qrels",
    "merge_qrels",
    "passage_text",
    "resolve_dataset",
]


def __getattr__(name: str) -> Any:
    # build_masks needs torch, which the rest of the package (read by the CLI at start-up) does not
    if name == "build_masks":
        from mpretriever.data.masks import build_masks

        return build_masks
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
