"""``train()``: data, model, objective and Trainer put together. The CLI only parses options into a TrainConfig."""

from __future__ import annotations

import gc
import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from accelerate import PartialState
from rich.console import Console
from transformers import PrinterCallback, ProgressCallback, TrainerCallback, TrainingArguments, set_seed

from mpretriever.data.beir import BeirDataset, load_qrels
from mpretriever.data.examples import LabelFilter, TrainingExample, build_examples, merge_qrels
from mpretriever.data.groups import GroupBuilder, IndexedExample
from mpretriever.data.negatives import load_negatives
from mpretriever.data.resolve import resolve_dataset
from mpretriever.files import OutputExistsError
from mpretriever.model.bi_encoder import BiEncoder
from mpretriever.model.manifest import MANIFEST_NAME, RunManifest
from mpretriever.model.passages import tokenize_corpus
from mpretriever.training.checkpoints import (
    incomplete_reason,
    is_training_run,
    last_complete_checkpoint,
    remove_run,
)
from mpretriever.training.dataset import GroupCollator, GroupedQueries
from mpretriever.training.objectives import get_objective
from mpretriever.training.progress import RichProgressCallback
from mpretriever.training.resume import check_resume_matches
from mpretriever.training.trainer import EpochCallback, MultiPositiveTrainer

logger = logging.getLogger(__name__)

Precision = Literal["no", "fp16", "bf16"]
DEFAULT_TEMPERATURE = {"cosine": 0.05, "dot": 1.0}


@dataclass
class TrainConfig:
    """Every option of a training run; defaults follow the paper's released run, scaled to one device."""

    data: str
    output: Path
    split: str = "train"
    loss: str = "lsepair"
    model: str | None = None
    # labels
    min_grade: int = 1
    sources: list[str] | None = None
    label_conflict: str = "max"  # see LabelConflict: which selected judgement decides when sources disagree
    extra_qrels: list[str] = field(default_factory=list)
    qrels_file: Path | None = None  # train on this qrels file instead of the dataset's qrels/<split>.tsv
    negatives: Path | None = None
    max_queries: int | None = None
    # groups
    group_size: int = 8
    max_positives: int = 4
    # loss
    temperature: float | None = None
    normalize_loss: bool | None = None
    positive_agg: str | None = None
    negative_agg: str | None = None
    # encoder (None: inherit from the model)
    pooling: str | None = None
    normalize: bool | None = None
    similarity: str | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    query_max_length: int | None = 32
    passage_max_length: int | None = 128
    # optimisation
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    grad_cache: int | None = None  # GradCache chunk size (texts per forward pass); None: no caching
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-5
    warmup: float = 0.1  # a fraction of the steps if < 1, else a number of steps
    weight_decay: float = 0.0
    precision: Precision = "no"
    seed: int = 42
    # checkpoints and logging
    save_steps: int = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    resume: bool = False
    resume_from: Path | None = None
    overwrite: bool = False
    dataloader_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuse numbers no training can use, before anything is read or written. 0 is an invalid temperature,
        not a request for the default (``None`` is); ``max_steps=-1`` means "as many as ``epochs`` take"."""
        positive = {
            "temperature": self.temperature,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        for name, value in positive.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        for name, value in {"warmup": self.warmup, "weight_decay": self.weight_decay}.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value}")
        if self.max_steps != -1 and self.max_steps < 1:
            raise ValueError(f"max_steps must be -1 (use epochs) or at least 1, got {self.max_steps}")


@dataclass
class TrainOutcome:
    output: Path
    manifest: RunManifest
    examples: int
    steps: int
    is_main_process: bool = True


def _check_output(config: TrainConfig) -> str | None:
    """Refuse to clobber an earlier run or anything that is not a run; return the checkpoint to resume from, if any."""
    output = config.output
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"{output} is a file, not a run directory; choose another --output")
    if config.overwrite and (config.resume or config.resume_from is not None):
        raise ValueError("--overwrite replaces the run in --output, resuming continues it: pass only one of them")
    if config.resume_from is not None:
        reason = incomplete_reason(config.resume_from)
        if reason is not None:
            raise FileNotFoundError(f"{config.resume_from}: not a complete mpretriever checkpoint ({reason})")
        return str(config.resume_from)
    if config.resume:
        last = last_complete_checkpoint(output)
        if last is None:
            raise FileNotFoundError(f"{output}: no complete checkpoint-* directory to resume from")
        return str(last)
    if output.exists() and any(output.iterdir()):
        if not config.overwrite:
            raise OutputExistsError(
                f"{output} already exists and is not empty; pass --resume to continue its run, "
                "--overwrite to replace it, or choose another --output"
            )
        if not is_training_run(output):
            raise OutputExistsError(
                f"{output} is not empty and holds no training run ({MANIFEST_NAME} or checkpoint-*), so --overwrite "
                "will not empty it; choose another --output"
            )
        inputs = _inputs_under(config, output)
        if inputs:
            raise ValueError(
                f"--overwrite would empty {output}, which holds this run's input {', '.join(inputs)}; "
                "choose another --output"
            )
    return None


def _inputs_under(config: TrainConfig, directory: Path) -> list[str]:
    """The run's inputs on disk (data, model, labels, negatives) that lie in ``directory``."""
    extra_qrels = [_parse_extra_qrels(spec)[0] for spec in config.extra_qrels]
    candidates = [config.data, config.model, config.qrels_file, config.negatives, *extra_qrels]
    root = directory.resolve()
    return [
        str(candidate)
        for candidate in candidates
        if candidate is not None
        and Path(candidate).expanduser().exists()
        and Path(candidate).expanduser().resolve().is_relative_to(root)
    ]


def _parse_extra_qrels(spec: str) -> tuple[Path, str]:
    path, _, source = spec.partition("=")
    return Path(path), source or "llm"


def load_training_examples(config: TrainConfig, dataset: BeirDataset) -> list[TrainingExample]:
    if config.qrels_file is not None:
        qrels = [load_qrels(config.qrels_file, dataset.queries, dataset.doc_index)]
    else:
        qrels = [dataset.qrels(config.split)]
    for spec in config.extra_qrels:
        path, source = _parse_extra_qrels(spec)
        qrels.append(load_qrels(path, dataset.queries, dataset.doc_index, default_source=source))
    negatives = load_negatives(config.negatives, dataset.queries, dataset.doc_index) if config.negatives else None
    label_filter = _label_filter(config)
    examples = build_examples(dataset.queries, merge_qrels(qrels), label_filter, negatives)
    if not examples:
        raise ValueError(f"{dataset.root}: no training query has a positive under {label_filter}")
    if config.max_queries is not None and config.max_queries < len(examples):
        examples = random.Random(config.seed).sample(examples, config.max_queries)
    return examples


def _label_filter(config: TrainConfig) -> LabelFilter:
    return LabelFilter.from_options(config.min_grade, config.sources, config.label_conflict)


def _index(example: TrainingExample, doc_index: dict[str, int]) -> IndexedExample:
    return IndexedExample(
        positives=tuple(doc_index[p.doc_id] for p in example.positives),
        excluded=tuple(doc_index[d] for d in example.excluded),
        hard_negatives=tuple(doc_index[d] for d in example.hard_negatives),
    )


def _training_arguments(config: TrainConfig) -> TrainingArguments:
    # Several CPU processes (torchrun without GPUs) need accelerate's CPU mode to run DDP over gloo.
    cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        use_cpu=cpu_processes,
        ddp_backend="gloo" if cpu_processes else None,
        output_dir=str(config.output),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        fp16=config.precision == "fp16",
        bf16=config.precision == "bf16",
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=config.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def train(
    config: TrainConfig,
    console: Console | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainOutcome:
    """Fine-tune an encoder with a multi-positive objective and save it to ``config.output``.

    ``callbacks`` are extra ``transformers`` trainer callbacks (early stopping, custom logging, ...).
    """
    objective = get_objective(config.loss)
    loss_options: dict[str, Any] = {
        "normalize": config.normalize_loss,
        "positive_agg": config.positive_agg,
        "negative_agg": config.negative_agg,
    }
    loss_fn = objective.bind(**loss_options)
    resume_checkpoint = _check_output(config)
    set_seed(config.seed)
    joined_elsewhere = dist.is_available() and dist.is_initialized()
    arguments = _training_arguments(config)  # under torchrun this joins the process group

    with arguments.main_process_first(desc="loading and tokenising the data"):  # one process fills the caches
        dataset = BeirDataset(resolve_dataset(config.data))
        examples = load_training_examples(config, dataset)
        model = BiEncoder.from_pretrained(
            config.model,
            pooling=config.pooling,
            normalize=config.normalize,
            similarity=config.similarity,
            query_prefix=config.query_prefix,
            passage_prefix=config.passage_prefix,
            query_max_length=config.query_max_length,
            passage_max_length=config.passage_max_length,
        )
        passage_tokens = tokenize_corpus(dataset.corpus, model)
    temperature = DEFAULT_TEMPERATURE[model.config.similarity] if config.temperature is None else config.temperature

    query_tokens = model.tokenize([example.query for example in examples], "query")
    builder = GroupBuilder(len(dataset.corpus), config.group_size, config.max_positives, objective.policy, config.seed)
    train_dataset = GroupedQueries([_index(e, dataset.doc_index) for e in examples], builder)

    recorded_elsewhere = {
        "data",
        "qrels_file",
        "output",
        "split",
        "loss",
        "model",
        "progress",
        "overwrite",
        "resume",
        "resume_from",
        "min_grade",
        "sources",
        "label_conflict",
        "extra_qrels",
        "normalize_loss",
        "positive_agg",
        "negative_agg",
        *asdict(model.config),
        "pooling",
        "normalize",
        "similarity",
    }
    hyperparameters = {key: value for key, value in asdict(config).items() if key not in recorded_elsewhere}
    hyperparameters.update(
        temperature=temperature,
        negatives=str(config.negatives) if config.negatives else None,
        world_size=arguments.world_size,
    )
    manifest_fields: dict[str, Any] = {
        "loss": objective.name,
        "loss_options": {key: value for key, value in loss_options.items() if value is not None},
        "dataset": str(dataset.root),
        "split": str(config.qrels_file) if config.qrels_file else config.split,
        "label_filter": {**_label_filter(config).record(), "extra_qrels": config.extra_qrels},
        "hyperparameters": hyperparameters,
        "train_samples": len(examples),
    }
    if resume_checkpoint is not None:
        check_resume_matches(Path(resume_checkpoint), model.manifest(**manifest_fields))
    elif config.overwrite and arguments.process_index == 0 and config.output.is_dir():
        remove_run(config.output)  # only now: a request that fails before training leaves the old run intact

    trainer = MultiPositiveTrainer(
        model=model,
        args=arguments,
        train_dataset=train_dataset,
        data_collator=GroupCollator(model, query_tokens, passage_tokens),
        loss_fn=loss_fn,
        temperature=temperature,
        manifest_factory=lambda: model.manifest(**manifest_fields),
        grad_cache_chunk=config.grad_cache,
    )
    trainer.add_callback(EpochCallback(train_dataset))
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if config.progress:
        trainer.add_callback(RichProgressCallback(console))
    for callback in callbacks:
        trainer.add_callback(callback)

    result = trainer.train(resume_from_checkpoint=resume_checkpoint)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    manifest_fields.update(
        final_train_loss=losses[-1] if losses else result.training_loss,
        train_runtime_s=round(result.metrics["train_runtime"], 2),
    )
    manifest_fields["hyperparameters"]["mean_train_loss"] = result.training_loss
    manifest_fields["hyperparameters"]["global_steps"] = result.global_step
    manifest = model.manifest(**manifest_fields)
    is_main_process = trainer.is_world_process_zero()
    if is_main_process:
        model.save(config.output, manifest)
    if not joined_elsewhere and dist.is_available() and dist.is_initialized():
        # Leaving gloo's threads to interpreter shutdown can abort a process ("terminate called without an active
        # exception") after a successful run; the group this call joined is left explicitly once all ranks are done.
        # DDP's reducer goes first, while the group is still registered: freed after the group, it would be the
        # group's last owner and join gloo's threads holding the GIL they may wait for (a deadlock seen in CI).
        trainer.accelerator.free_memory()
        del trainer
        gc.collect()
        state = PartialState()
        state.wait_for_everyone()
        state.destroy_process_group()
    return TrainOutcome(
        output=config.output,
        manifest=manifest,
        examples=len(examples),
        steps=result.global_step,
        is_main_process=is_main_process,
    )
