"""The base of the sentence-transformers loss classes: embed, score with id-based masks, optionally across devices
and with GradCache, through the same batch loss as ``mpr train`` (:func:`mpretriever.training.step.batch_loss`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import cos_sim, similarity_fct_name
from torch import Tensor, nn

from mpretriever.data.groups import PositivePolicy
from mpretriever.losses.st.collator import POLICY_CODES
from mpretriever.training.objectives import get_objective
from mpretriever.training.step import batch_loss

Similarity = Callable[[Tensor, Tensor], Tensor]


class _SentenceEmbedder:
    """The trained model (or the Trainer's DDP wrapper of it) as :func:`batch_loss` calls it."""

    def __init__(self, model: nn.Module, similarity_fct: Similarity) -> None:
        self.model = model
        self.similarity_fct = similarity_fct

    def __call__(self, features: dict[str, Any]) -> Tensor:
        return self.model(features)["sentence_embedding"]

    def similarity(self, queries: Tensor, passages: Tensor) -> Tensor:
        return self.similarity_fct(queries, passages)

    def no_sync(self) -> contextlib.AbstractContextManager[None]:
        no_sync = getattr(self.model, "no_sync", None)
        return no_sync() if no_sync is not None else contextlib.nullcontext()


def _current_autocast(device_type: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A context that re-enters the autocast state of the forward pass (GradCache re-embeds in the backward pass,
    which the Trainer runs outside autocast)."""
    enabled = torch.is_autocast_enabled(device_type)
    dtype = torch.get_autocast_dtype(device_type)

    @contextlib.contextmanager
    def autocast() -> Iterator[None]:
        with torch.autocast(device_type, dtype=dtype, enabled=enabled):
            yield

    return autocast


class MultiPositiveLoss(nn.Module):
    """A multi-positive objective of :mod:`mpretriever.losses` as a sentence-transformers loss.

    Subclasses name the objective (``objective``: a name of ``mpr train --loss``). The batch comes from
    :class:`~mpretriever.losses.st.collator.MultiPositiveDataCollator` built for the same positive policy.
    """

    objective: ClassVar[str]

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.05,
        similarity_fct: Similarity = cos_sim,
        gather_across_devices: bool = False,
        mini_batch_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if mini_batch_size is not None and mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be positive, got {mini_batch_size}")
        self.model = model
        self.temperature = temperature
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices
        self.mini_batch_size = mini_batch_size
        self.options = {key: value for key, value in options.items() if value is not None}
        self.loss_fn = get_objective(self.objective).bind(**self.options)

    @property
    def policy(self) -> PositivePolicy:
        """Which positives the collator encodes for this objective (see the collator's ``policy``)."""
        return get_objective(self.objective).policy

    @property
    def scale(self) -> float:
        """``1 / temperature``, the name sentence-transformers' losses use."""
        return 1.0 / self.temperature

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: dict[str, Tensor] | None) -> Tensor:
        features = list(sentence_features)
        if len(features) != 2 or not isinstance(labels, dict) or "positive_rows" not in labels:
            raise ValueError(
                f"{type(self).__name__} needs batches from MultiPositiveDataCollator "
                "(data_collator=MultiPositiveDataCollator.for_loss(loss) in SentenceTransformerTrainer)"
            )
        if int(labels["policy"]) != POLICY_CODES[self.policy]:
            collated = list(POLICY_CODES)[int(labels["policy"])]
            raise ValueError(
                f"the batch was collated for positive policy {collated.value!r}, but {type(self).__name__} needs "
                f"{self.policy.value!r}: build the collator with MultiPositiveDataCollator.for_loss(loss)"
            )
        queries, passages = features
        embedder = _SentenceEmbedder(self.model, self.similarity_fct)
        device_type = next(value for value in queries.values() if isinstance(value, Tensor)).device.type
        return batch_loss(
            embedder,
            embedder,
            {"queries": queries, "passages": passages, **labels},
            self.loss_fn,
            self.temperature,
            grad_cache_chunk=self.mini_batch_size,
            autocast=_current_autocast(device_type),
            gather=self.gather_across_devices,
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "gather_across_devices": self.gather_across_devices,
            "mini_batch_size": self.mini_batch_size,
            **self.options,
        }

    @property
    def citation(self) -> str:
        return """
@inproceedings{wang2026multipositive,
    title={Training Dense Retrievers with Multiple Positive Passages},
    author={Wang and others},
    booktitle={Proceedings of the ACM SIGKDD Conference on Knowledge Discovery and Data Mining (KDD)},
    year={2026},
    eprint={2602.12727},
    archivePrefix={arXiv},
}
"""
