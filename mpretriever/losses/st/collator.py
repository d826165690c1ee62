"""The data collator of the multi-positive sentence-transformers losses: a list of positives per query.

sentence-transformers' own collator tokenises one text per column and row, so a query cannot have a variable
number of positives. :class:`MultiPositiveDataCollator` reads a dataset whose first column is the query, whose
second is the query's positives (a list of texts) and whose other columns are negatives (lists or single texts),
encodes every query's positives (or a sample of them) and negatives as one batch of passages, and builds the id-based
masks of :mod:`mpretriever.data.masks`: a passage is identified by a hash of its text, so a passage that is a
positive of two queries, or a negative of one and a positive of another, is scored as such in every row, and a
passage that appears twice in the batch is counted once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from mpretriever.data.flagembedding import text_id
from mpretriever.data.groups import PositivePolicy
from mpretriever.data.masks import masks_for_columns, rows_tensor

PASSAGES = "mpr_passages"
"""The prefix of the passages' features in a collated batch (the query column keeps its own name)."""

POLICY_CODES: dict[PositivePolicy, int] = {policy: code for code, policy in enumerate(PositivePolicy)}

PROMPT_COLUMN = "prompt"
"""FlagEmbedding's per-row query instruction: put before the row's query (FlagEmbedding's ``{prompt}{query}``)."""

NOT_TEXT_COLUMNS = ("pos_scores", "neg_scores", "type")
"""FlagEmbedding columns that are not passages; refused rather than read as negatives."""


def text_key(text: str) -> int:
    """A passage's identity in the masks: the FlagEmbedding reader's text digest (64 bits of the SHA-256) as a
    non-negative int64, the same in every process."""
    return int(text_id(text, ""), 16) >> 1


def _texts(value: Any, column: str, row: int) -> list[str]:
    """A positives or negatives cell as a list of texts: a list of texts, or one text."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or isinstance(items, (bytes, bytearray)):
        raise ValueError(f"row {row} of the batch: column {column!r} holds {type(value).__name__}, not texts")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"row {row} of the batch: column {column!r} holds {item!r}, not a non-empty text")
    return list(items)


@dataclass
class MultiPositiveDataCollator(SentenceTransformerDataCollator):
    """Collates ``(query, positives, negatives...)`` rows for :mod:`mpretriever.losses.st`'s losses.

    Args:
        preprocess_fn: the model's ``preprocess`` (as for sentence-transformers' collator).
        policy: which positives each query encodes, and how the others count; take it from the loss
            (``loss.policy``, or build the collator with :meth:`for_loss`). ``all``: up to ``max_positives`` (a
            fresh random sample in every batch when a query has more), and every positive of the query found in the
            batch is a positive of its row. ``first``: the first listed positive only, the others ignored (InfoNCE).
            ``one-random``: one positive drawn per batch, the others ignored (Rand1LH).
        max_positives: at most this many positives per query in a batch (``None``: all of them).
        max_negatives: at most this many of a query's listed negatives per batch (``None``: all of them).
        seed: the seed of the positive and negative draws.

    The batch carries the queries' features under the query column's name, the passages' under ``mpr_passages``,
    and under ``label`` the masks and the hashed passage ids they were built from (which
    ``gather_across_devices`` uses to rebuild the masks against every process's passages).
    """

    policy: PositivePolicy | str = PositivePolicy.ALL
    max_positives: int | None = None
    max_negatives: int | None = None
    seed: int = 42
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = PositivePolicy(self.policy)
        for name, least in (("max_positives", 1), ("max_negatives", 0)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        self._rng = random.Random(self.seed)

    @classmethod
    def for_loss(cls, loss: Any, **options: Any) -> MultiPositiveDataCollator:
        """The collator for ``loss`` (one of :mod:`mpretriever.losses.st`'s), with its model's ``preprocess``."""
        return cls(preprocess_fn=loss.model.preprocess, policy=loss.policy, **options)

    def _choose_positives(self, positives: list[str]) -> tuple[list[str], set[str], set[str]]:
        """The positives to encode, the row's positives, and its positives that are ignored rather than positive."""
        if self.policy is PositivePolicy.FIRST:
            chosen = positives[:1]
        elif self.policy is PositivePolicy.ONE_RANDOM:
            chosen = [self._rng.choice(positives)]
        elif self.max_positives is not None and len(positives) > self.max_positives:
            chosen = self._rng.sample(positives, self.max_positives)
        else:
            chosen = positives
        if self.policy is PositivePolicy.ALL:
            return chosen, set(positives), set()
        return chosen, set(chosen), set(positives) - set(chosen)

    def _preprocess(self, texts: list[str], column: str, position: int, batch: dict[str, Any]) -> dict[str, Any]:
        task = self._get_task_for_column(column, position, self._resolve_router_mapping(batch))
        prompts = self._resolve_prompts(batch)
        prompt = self._get_prompt_for_column(prompts, column) if prompts else None
        max_length = self._get_max_length_for_task(task)
        options: dict[str, Any] = {"prompt": prompt, "task": task}
        if max_length is not None:
            options["max_length"] = max_length
        preprocessed = dict(self.preprocess_fn(texts, **options))
        if task is not None:
            preprocessed["task"] = task
        return preprocessed

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        batch: dict[str, Any] = {}
        columns = list(features[0].keys())
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        labelled = [column for column in columns if column in self.valid_label_columns]
        if labelled:
            raise ValueError(
                f"the multi-positive losses take no label column, but the dataset has {labelled}; "
                f"remove it (dataset.remove_columns({labelled!r}))"
            )
        not_text = [column for column in columns if column in NOT_TEXT_COLUMNS]
        if not_text:
            raise ValueError(
                f"column(s) {not_text} are not passages, and every column after the positives is read as negatives; "
                f"remove them (dataset.remove_columns({not_text!r}))"
            )
        with_prompts = PROMPT_COLUMN in columns
        if with_prompts:
            columns.remove(PROMPT_COLUMN)
        if len(columns) < 2:
            raise ValueError(f"expected a query column and a positives column, got the columns {columns}")
        query_column, positive_column, *negative_columns = columns
        prompts = self._resolve_prompts(batch)
        if prompts and isinstance(prompts, dict):
            passage_prompts = {prompts.get(column) for column in (positive_column, *negative_columns)}
            if len(passage_prompts) > 1:
                raise ValueError(
                    "the positives and negatives are encoded as one batch of passages, so their columns need the "
                    f"same prompt; got {sorted(map(str, passage_prompts))} for {[positive_column, *negative_columns]}"
                )

        queries, passages, row_positives, row_ignored = [], [], [], []
        for row, item in enumerate(features):
            query = item[query_column]
            if not isinstance(query, str) or not query.strip():
                raise ValueError(f"row {row} of the batch: column {query_column!r} holds {query!r}, not a query text")
            positives = _texts(item[positive_column], positive_column, row)
            if not positives:
                raise ValueError(f"row {row} of the batch: column {positive_column!r} has no positive")
            negatives = [text for column in negative_columns for text in _texts(item[column], column, row)]
            if self.max_negatives is not None and len(negatives) > self.max_negatives:
                negatives = self._rng.sample(negatives, self.max_negatives)
            chosen, row_positive_texts, ignored = self._choose_positives(positives)
            if with_prompts and item[PROMPT_COLUMN]:
                query = f"{item[PROMPT_COLUMN]}{query}"
            queries.append(query)
            passages.extend([*chosen, *negatives])
            row_positives.append(frozenset(map(text_key, row_positive_texts)))
            row_ignored.append(frozenset(map(text_key, ignored)))

        passage_ids = torch.tensor([text_key(text) for text in passages], dtype=torch.long)
        positive_rows, ignored_rows = rows_tensor(row_positives), rows_tensor(row_ignored)
        positive_mask, ignore_mask = masks_for_columns(passage_ids, positive_rows, ignored_rows)
        for prefix, texts, column, position in (
            (query_column, queries, query_column, 0),
            (PASSAGES, passages, positive_column, 1),
        ):
            for key, value in self._preprocess(texts, column, position, batch).items():
                batch[f"{prefix}_{key}"] = value
        batch["label"] = {
            "positive_mask": positive_mask,
            "ignore_mask": ignore_mask,
            "columns": passage_ids,
            "positive_rows": positive_rows,
            "ignored_rows": ignored_rows,
            "policy": torch.tensor(POLICY_CODES[self.policy]),
        }
        return batch
