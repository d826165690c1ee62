"""The Hugging Face ``Trainer`` specialised for multi-positive bi-encoder training.

Only the loss and the model format are ours: the optimiser, schedule, mixed precision, gradient accumulation,
checkpointing and resuming are the Trainer's. Every checkpoint is a complete sentence-transformers model with its
manifest, so any of them can be evaluated or served.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
from sentence_transformers import SentenceTransformer
from torch import Tensor, nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.model.manifest import RunManifest
from mpretriever.search.embeddings import EmbeddingCache
from mpretriever.training.dev_set import TrainedStepEmbeddings
from mpretriever.training.objectives import LossFn
from mpretriever.training.step import batch_loss


class MultiPositiveTrainer(Trainer):
    """``Trainer`` whose loss is a multi-positive objective over the batch's query x passage score matrix."""

    def __init__(
        self,
        *args: Any,
        loss_fn: LossFn,
        temperature: float,
        manifest_factory: Callable[[], RunManifest],
        grad_cache_chunk: int | None = None,
        dev_evaluator: Callable[..., dict[str, float]] | None = None,
        trained_steps: TrainedStepEmbeddings | None = None,
        start_passage_max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.temperature = temperature
        self.manifest_factory = manifest_factory
        self.grad_cache_chunk = grad_cache_chunk
        self.dev_evaluator = dev_evaluator
        self.trained_steps = trained_steps
        self.start_passage_max_length = start_passage_max_length

    def _bi_encoder(self, model: nn.Module | None = None) -> BiEncoder:
        unwrapped = self.accelerator.unwrap_model(model if model is not None else self.model)
        assert isinstance(unwrapped, BiEncoder)
        return unwrapped

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        loss = batch_loss(
            model,
            self._bi_encoder(model),
            inputs,
            self.loss_fn,
            self.temperature,
            grad_cache_chunk=self.grad_cache_chunk,
            autocast=self.compute_loss_context_manager,
        )
        return (loss, {}) if return_outputs else loss

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Retrieval on the dev set (``dev_evaluator``) instead of a loss over ``eval_dataset``: the figures the
        Trainer's ``metric_for_best_model`` / ``load_best_model_at_end`` select on. The first process evaluates,
        the others receive its figures, so that every process keeps the same best checkpoint."""
        if self.dev_evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        started = time.perf_counter()
        # The starting model is often one evaluated before (the base model, by mpr eval or another run of a study):
        # its corpus embeddings come from the cache. Trained steps are new weights each time: the best one's are
        # kept aside (trained_steps), for the saved model's index.
        # The starting model is evaluated as it was served before training (start_passage_max_length: a base
        # model reads passages up to its maximum), the trained steps as the saved run will be.
        trained: TrainedStepEmbeddings | None = None
        if self.state.global_step == 0:
            cache: EmbeddingCache | None = EmbeddingCache()
            passages = self.start_passage_max_length
        else:
            trained = self.trained_steps
            cache = trained.steps if trained is not None else None
            passages = None
        values = [
            self.dev_evaluator(
                self._bi_encoder(), cache=cache, step=self.state.global_step, passage_max_length=passages
            )
            if self.is_world_process_zero()
            else None
        ]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast_object_list(values, src=0)
        metrics = {f"{metric_key_prefix}_{label}": value for label, value in (values[0] or {}).items()}
        best = self.args.metric_for_best_model
        if trained is not None and best is not None and values[0] is not None:
            label = best.removeprefix(f"{metric_key_prefix}_")
            if label in values[0]:
                trained.record(
                    values[0][label],
                    greater_is_better=self.args.greater_is_better is not False,
                    latest=not self.args.load_best_model_at_end,
                )
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - started, 2)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics=metrics)
        return metrics

    def _load_best_model(self) -> None:
        # The checkpoints are sentence-transformers models, which the Trainer's own loader does not read.
        if self.state.best_model_checkpoint is not None:
            self._load_from_checkpoint(self.state.best_model_checkpoint)

    def _save(self, output_dir: str | None = None, state_dict: dict[str, Tensor] | None = None) -> None:
        if self.args.should_save:
            self._bi_encoder().save(output_dir or self.args.output_dir, manifest=self.manifest_factory())

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        encoder = self._bi_encoder(model)
        loaded = SentenceTransformer(resume_from_checkpoint, device=str(self.args.device))
        encoder.model.load_state_dict(loaded.state_dict())


class EpochCallback(TrainerCallback):
    """Tells the dataset which epoch starts, so that groups (and Rand1LH's positive) rotate per epoch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.dataset.set_epoch(math.floor(state.epoch + 1e-9) if state.epoch else 0)
