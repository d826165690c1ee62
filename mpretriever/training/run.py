"""``train()``: data, model, objective and Trainer put together. The CLI only parses options into a TrainConfig."""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import random
from collections.abc import Collection, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate import PartialState
from rich.console import Console
from transformers import PrinterCallback, ProgressCallback, TrainerCallback, TrainingArguments, set_seed

from mpretriever.data.beir import BeirDataset, Qrels, grades, load_qrels
from mpretriever.data.examples import (
    LabelFilter,
    TrainingExample,
    build_examples,
    merge_qrels,
    strongest_judgements,
)
from mpretriever.data.flagembedding import default_negatives
from mpretriever.data.groups import GroupBuilder, IndexedExample
from mpretriever.data.negatives import load_negatives
from mpretriever.data.resolve import resolve_dataset
from mpretriever.evaluation.metrics import DEFAULT_MEASURES, parse_measures
from mpretriever.files import OutputExistsError
from mpretriever.model.bi_encoder import BiEncoder, serving_lengths
from mpretriever.model.manifest import MANIFEST_NAME, RunManifest
from mpretriever.model.passages import tokenize_corpus
from mpretriever.training.checkpoints import (
    checkpoint_step,
    incomplete_reason,
    is_training_run,
    last_complete_checkpoint,
    remove_run,
)
from mpretriever.training.dataset import GroupCollator, GroupedQueries
from mpretriever.training.dev_curve import DEV_CURVE_PLOT, DevCurve
from mpretriever.training.dev_set import (
    DEFAULT_POOL_DEPTH,
    DEV_PER_QUERY_DIR,
    DevCorpus,
    DevEvaluator,
    DevSet,
    TrainedStepEmbeddings,
    build_dev_set,
    held_out_queries,
)
from mpretriever.training.objectives import get_objective
from mpretriever.training.options import TRAINER_DEFAULTS, check_trainer_options, split_options
from mpretriever.training.progress import RichProgressCallback
from mpretriever.training.resume import check_resume_matches
from mpretriever.training.trainer import EpochCallback, MultiPositiveTrainer

logger = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = {"cosine": 0.05, "dot": 1.0}


@dataclass
class TrainConfig:
    """mpretriever's options of a training run (objective, labels, groups, lengths, dev evaluation).

    Everything the Hugging Face Trainer knows is a ``TrainingArguments`` field in ``trainer``, by its own name
    (``{"learning_rate": 5e-5, "lr_scheduler_type": "cosine", "gradient_checkpointing": True}``); fields not given
    take :data:`~mpretriever.training.options.TRAINER_DEFAULTS` (the measured recipe) or Hugging Face's defaults.
    Use :meth:`from_options` to build one from a flat mapping of both kinds (a study file's ``train``).

    With ``eval_split`` (a qrels split) or ``dev_queries`` (that many training queries held out by a stable hash,
    never trained on), retrieval on the dev set is evaluated at the start and every ``eval_steps`` (default: a
    fifth of the run), and the saved model is the checkpoint best by ``metric_for_best`` (the Trainer's
    ``load_best_model_at_end``), or the starting model itself when no evaluated step beats it (``trainer``
    ``load_best_model_at_end=False`` saves the last step instead). ``dev_corpus``: ``full``, ``pool`` (judged
    passages + BM25 top ``dev_pool_depth`` per dev query) or ``auto`` (full up to 20,000 passages).
    """

    data: str
    output: Path
    split: str = "train"
    loss: str = "lsepair"
    model: str | None = None
    # labels
    min_grade: int = 1
    sources: list[str] | None = None
    label_conflict: str = "max"  # see LabelConflict: which selected judgement decides when sources disagree
    source_min_grade: dict[str, int] = field(default_factory=dict)  # {source: minimum grade}, over min_grade
    extra_qrels: list[str] = field(default_factory=list)
    qrels_file: Path | None = None  # train on this qrels file instead of the dataset's qrels/<split>.tsv
    negatives: Path | None = None
    queries_from: Path | None = None  # train only on the queries this qrels file judges (e.g. mpr annotate's sample)
    max_queries: int | None = None
    # groups
    group_size: int = 4
    max_positives: int = 3
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
    grad_cache: int | None = None  # GradCache chunk size (texts per forward pass); None: no caching
    # dev evaluation and best-checkpoint selection
    eval_split: str | None = None
    dev_queries: int | None = None
    dev_corpus: DevCorpus = "auto"
    dev_pool_depth: int = DEFAULT_POOL_DEPTH
    metric_for_best: str = "nDCG@10"
    # the run
    resume: bool = False
    resume_from: Path | None = None
    overwrite: bool = False
    progress: bool = True
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse options no training can use, before anything is read or written. 0 is an invalid temperature,
        not a request for the default (``None`` is)."""
        self.output = Path(self.output)
        self.trainer = dict(self.trainer)
        self.source_min_grade = dict(self.source_min_grade)
        _label_filter(self)  # refuses an unknown conflict rule or a non-integer grade
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature}")
        check_trainer_options(self.trainer, own_option_names())
        if self.eval_split is not None and self.dev_queries is not None:
            raise ValueError(
                "--eval-split evaluates on a qrels split, --dev-queries on held-out training queries: "
                "pass only one of them"
            )
        if self.eval_split == self.split and self.qrels_file is None:
            raise ValueError(
                f"--eval-split {self.eval_split} is the split the run trains on; choose another "
                "split, or --dev-queries N to hold training queries out"
            )
        if self.dev_queries is not None and self.dev_queries < 1:
            raise ValueError(f"dev_queries must be at least 1, got {self.dev_queries}")
        if self.dev_corpus not in ("auto", "full", "pool"):
            raise ValueError(f"dev_corpus must be auto, full or pool, got {self.dev_corpus!r}")
        if self.dev_pool_depth < 1:
            raise ValueError(f"dev_pool_depth must be at least 1, got {self.dev_pool_depth}")
        self.metric_for_best = best_metric_label(self.metric_for_best)

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """A config from a flat mapping of mpretriever options and ``TrainingArguments`` fields (``trainer`` may
        also be given, and is updated by the flat fields)."""
        given = dict(options.pop("trainer", None) or {})
        own, trainer = split_options(options, own_option_names())
        return cls(**own, trainer={**given, **trainer})

    def with_options(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (mpretriever options or ``TrainingArguments`` fields) applied."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trainer"}
        return TrainConfig.from_options(**{**own, "trainer": self.trainer, **changes})

    @property
    def evaluates(self) -> bool:
        """Whether the run evaluates on a dev set and keeps its best checkpoint."""
        return self.eval_split is not None or self.dev_queries is not None

    def trainer_options(self) -> dict[str, Any]:
        """The ``TrainingArguments`` fields of the run: mpretriever's defaults, the dev evaluation's, then the
        user's."""
        options = dict(TRAINER_DEFAULTS)
        if self.evaluates:
            steps = self.trainer.get("eval_steps", DEV_EVAL_STEPS)
            options.update(
                eval_strategy="steps",
                eval_steps=steps,
                save_steps=steps,
                eval_on_start=True,
                load_best_model_at_end=True,
            )
        options.update(self.trainer)
        return options

    @property
    def seed(self) -> int:
        return int(self.trainer_options()["seed"])

    def options(self) -> dict[str, Any]:
        """Every option of the run as one flat mapping (mpretriever's and the Trainer's), without those that only
        say where or how this session runs."""
        own = {key: value for key, value in asdict(self).items() if key not in SESSION_OPTIONS}
        return {**own, **self.trainer_options()}


SESSION_OPTIONS = frozenset({"output", "progress", "resume", "resume_from", "overwrite", "trainer"})
DEV_EVAL_STEPS = 0.2  # a fraction of the run's steps: the start and five evaluations


def own_option_names() -> list[str]:
    """mpretriever's own training options (the fields of :class:`TrainConfig` but ``trainer``)."""
    return [f.name for f in fields(TrainConfig) if f.name != "trainer"]


def own_option_defaults() -> dict[str, Any]:
    """The default of each of mpretriever's own options, as a run record stores it (JSON values)."""
    defaults = {}
    for option in fields(TrainConfig):
        if option.name == "trainer":
            continue
        if option.default is not MISSING:
            defaults[option.name] = option.default
        elif option.default_factory is not MISSING:
            defaults[option.name] = option.default_factory()
    return json.loads(json.dumps(defaults, default=str))


def best_metric_label(name: str) -> str:
    """The label of the one measure that selects the best checkpoint (``ndcg@10`` -> ``nDCG@10``)."""
    measures = parse_measures([name])
    if len(measures) != 1:
        raise ValueError(f"metric_for_best must name one measure, got {name!r}")
    return measures[0].label


@dataclass
class TrainOutcome:
    output: Path
    manifest: RunManifest
    examples: int
    steps: int
    is_main_process: bool = True
    dev_curve: DevCurve | None = None


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
    candidates = [config.data, config.model, config.qrels_file, config.negatives, config.queries_from, *extra_qrels]
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


def training_qrels(config: TrainConfig, dataset: BeirDataset) -> list[Qrels]:
    """Every qrels file the run's labels come from: the split (or ``qrels_file``), then each ``extra_qrels``."""
    if config.qrels_file is not None:
        qrels = [load_qrels(config.qrels_file, dataset.queries, dataset.doc_index)]
    else:
        qrels = [dataset.qrels(config.split)]
    for spec in config.extra_qrels:
        path, source = _parse_extra_qrels(spec)
        qrels.append(load_qrels(path, dataset.queries, dataset.doc_index, default_source=source))
    return qrels


def negatives_file(config: TrainConfig, dataset: BeirDataset) -> Path | None:
    """``--negatives``, or else the negatives a FlagEmbedding file gave (its ``neg`` lists)."""
    return config.negatives or default_negatives(dataset.root)


def load_training_examples(
    config: TrainConfig, dataset: BeirDataset, held_out: Collection[str] = ()
) -> list[TrainingExample]:
    """The training examples of the run, without the ``held_out`` dev queries."""
    negatives_path = negatives_file(config, dataset)
    negatives = load_negatives(negatives_path, dataset.queries, dataset.doc_index) if negatives_path else None
    label_filter = _label_filter(config)
    examples = build_examples(dataset.queries, merge_qrels(training_qrels(config, dataset)), label_filter, negatives)
    if held_out:
        examples = [example for example in examples if example.query_id not in held_out]
    if config.queries_from is not None:
        judged = set(load_qrels(Path(config.queries_from), dataset.queries, dataset.doc_index))
        examples = [example for example in examples if example.query_id in judged]
    if not examples:
        only = f" among the queries of {config.queries_from}" if config.queries_from is not None else ""
        raise ValueError(f"{dataset.root}: no training query{only} has a positive under {label_filter}")
    if config.max_queries is not None and config.max_queries < len(examples):
        examples = random.Random(config.seed).sample(examples, config.max_queries)
    return examples


def load_dev_set(config: TrainConfig, dataset: BeirDataset) -> DevSet | None:
    """The run's dev set: the ``eval_split`` qrels, or ``dev_queries`` training queries held out by hash."""
    if config.eval_split is not None:
        qrels = grades(dataset.qrels(config.eval_split))
        source = f"split {config.eval_split}"
    elif config.dev_queries is not None:
        merged = grades(strongest_judgements(merge_qrels(training_qrels(config, dataset))))
        judged = {query_id: pairs for query_id, pairs in merged.items() if any(g >= 1 for g in pairs.values())}
        if config.dev_queries >= len(judged):
            raise ValueError(
                f"--dev-queries {config.dev_queries} would hold out every one of the {len(judged)} "
                "training queries with a positive; hold out fewer"
            )
        kept = held_out_queries(judged, config.dev_queries)
        qrels = {query_id: judged[query_id] for query_id in kept}
        source = f"{config.split if config.qrels_file is None else config.qrels_file}, held out of training"
    else:
        return None
    return build_dev_set(dataset, qrels, source, config.dev_corpus, config.dev_pool_depth)


def starting_model(config: TrainConfig) -> BiEncoder:
    """The encoder a run starts from: ``config.model`` with the run's encoder options."""
    return BiEncoder.from_pretrained(
        config.model,
        pooling=config.pooling,
        normalize=config.normalize,
        similarity=config.similarity,
        query_prefix=config.query_prefix,
        passage_prefix=config.passage_prefix,
        query_max_length=config.query_max_length,
        passage_max_length=config.passage_max_length,
    )


def _label_filter(config: TrainConfig) -> LabelFilter:
    return LabelFilter.from_options(config.min_grade, config.sources, config.label_conflict, config.source_min_grade)


def _index(example: TrainingExample, doc_index: dict[str, int]) -> IndexedExample:
    return IndexedExample(
        positives=tuple(doc_index[p.doc_id] for p in example.positives),
        excluded=tuple(doc_index[d] for d in example.excluded),
        hard_negatives=tuple(doc_index[d] for d in example.hard_negatives),
    )


def _training_arguments(config: TrainConfig) -> TrainingArguments:
    options = config.trainer_options()
    # Several CPU processes (torchrun without GPUs) need accelerate's CPU mode to run DDP over gloo.
    cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if cpu_processes:
        options = {"use_cpu": True, "ddp_backend": "gloo", **options}
    options.setdefault("data_seed", options["seed"])
    options.setdefault("dataloader_pin_memory", torch.cuda.is_available())
    if options.get("eval_strategy", "no") != "no":
        options.update(metric_for_best_model=f"eval_{config.metric_for_best}", greater_is_better=True)
    return TrainingArguments(
        output_dir=str(config.output),
        disable_tqdm=True,
        remove_unused_columns=False,
        **options,
    )


def train(
    config: TrainConfig,
    console: Console | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainOutcome:
    """Fine-tune an encoder with a multi-positive objective and save it to ``config.output``.

    With a dev set (``eval_split`` or ``dev_queries``) the saved model is the best evaluated checkpoint, and the
    manifest and ``dev-curve.png`` keep the dev curve. ``callbacks`` are extra ``transformers`` trainer callbacks
    (early stopping, custom logging, ...).
    """
    console = console or Console(stderr=True)
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
        dev_set = load_dev_set(config, dataset)
        held_out = dev_set.queries if dev_set is not None and config.dev_queries is not None else ()
        examples = load_training_examples(config, dataset, held_out)
        model = starting_model(config)
        passage_tokens = tokenize_corpus(dataset.corpus, model)
    temperature = DEFAULT_TEMPERATURE[model.config.similarity] if config.temperature is None else config.temperature

    query_tokens = model.tokenize([example.query for example in examples], "query")
    builder = GroupBuilder(len(dataset.corpus), config.group_size, config.max_positives, objective.policy, config.seed)
    train_dataset = GroupedQueries([_index(e, dataset.doc_index) for e in examples], builder)

    recorded_elsewhere = {
        "data",
        "qrels_file",
        "split",
        "loss",
        "model",
        "min_grade",
        "sources",
        "label_conflict",
        "source_min_grade",
        "extra_qrels",
        "queries_from",
        "normalize_loss",
        "positive_agg",
        "negative_agg",
        *asdict(model.config),
        "pooling",
        "normalize",
        "similarity",
    }
    hyperparameters = {key: value for key, value in config.options().items() if key not in recorded_elsewhere}
    hyperparameters.update(
        temperature=temperature,
        negatives=str(used) if (used := negatives_file(config, dataset)) else None,
        world_size=arguments.world_size,
    )
    manifest_fields: dict[str, Any] = {
        "loss": objective.name,
        "loss_options": {key: value for key, value in loss_options.items() if value is not None},
        "dataset": str(dataset.root),
        "split": str(config.qrels_file) if config.qrels_file else config.split,
        "label_filter": {
            **_label_filter(config).record(),
            "extra_qrels": config.extra_qrels,
            "queries_from": str(config.queries_from) if config.queries_from is not None else None,
        },
        "hyperparameters": hyperparameters,
        "train_samples": len(examples),
    }
    if resume_checkpoint is not None:
        check_resume_matches(Path(resume_checkpoint), model.manifest(**manifest_fields), own_option_defaults())
    elif config.overwrite and arguments.process_index == 0 and config.output.is_dir():
        remove_run(config.output)  # only now: a request that fails before training leaves the old run intact

    evaluator = None
    start_passages: int | None = None
    if dev_set is not None:
        measures = list(dict.fromkeys([config.metric_for_best, *DEFAULT_MEASURES]))
        evaluator = DevEvaluator(dev_set, dataset.corpus, measures, record_directory=config.output / DEV_PER_QUERY_DIR)
        if resume_checkpoint is not None:
            evaluator.load_recorded(checkpoint_step(Path(resume_checkpoint)) or 0)
        start_passages = model.served_lengths["passage_max_length"]
        if arguments.process_index == 0:
            lengths = serving_lengths(model.config, model.max_seq_length)
            console.print(
                f"dev set: {dev_set.headline()}; queries up to {lengths['query_max_length']} tokens, passages up to "
                f"{lengths['passage_max_length']} as the saved model is served (the starting model: up to "
                f"{start_passages}, as it is); best checkpoint by {config.metric_for_best}"
            )
    step_embeddings = TrainedStepEmbeddings() if evaluator is not None and arguments.process_index == 0 else None
    trainer = MultiPositiveTrainer(
        model=model,
        args=arguments,
        train_dataset=train_dataset,
        eval_dataset=evaluator.queries if evaluator is not None else None,
        data_collator=GroupCollator(model, query_tokens, passage_tokens),
        loss_fn=loss_fn,
        temperature=temperature,
        manifest_factory=lambda: model.manifest(**manifest_fields),
        grad_cache_chunk=config.grad_cache,
        dev_evaluator=evaluator,
        trained_steps=step_embeddings,
        start_passage_max_length=start_passages,
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
    curve = None
    if dev_set is not None and evaluator is not None:
        curve = DevCurve.from_trainer_state(
            trainer.state, dev_set, evaluator.labels, config.metric_for_best, arguments.load_best_model_at_end
        )
        if arguments.load_best_model_at_end and curve.start_is_best:
            # The best evaluated model is the one training started from: save it as it was served, not a worse
            # trained step.
            model.load_state_dict(starting_model(config).state_dict())
            model.config = replace(model.config, passage_max_length=start_passages)
            curve = replace(curve, kept_step=0)
        curve = curve.compared_with_start(evaluator.per_query)
        manifest_fields["dev_evaluation"] = {**curve.to_dict(), "per_query": f"{DEV_PER_QUERY_DIR}/step-<step>.json"}
    manifest = model.manifest(**manifest_fields)
    is_main_process = trainer.is_world_process_zero()
    if is_main_process:
        model.save(config.output, manifest)
        if curve is not None:
            curve.plot(config.output / DEV_CURVE_PLOT)
            for line in curve.verdict():
                console.print(line)
    if step_embeddings is not None and evaluator is not None:
        step_embeddings.keep(model, evaluator.corpus)
        step_embeddings.close()
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
        dev_curve=curve,
    )
