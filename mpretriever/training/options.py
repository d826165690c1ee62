"""The Hugging Face ``TrainingArguments`` of a run: every field passes through, none is copied by hand.

mpretriever's own options (objective, labels, groups, lengths, dev evaluation) are the fields of
:class:`~mpretriever.training.run.TrainConfig`. Everything the Trainer knows (optimiser, scheduler, precision,
gradient checkpointing, logging integrations, DeepSpeed / FSDP, evaluation and saving strategy, ...) is a
``TrainingArguments`` field given by its own name in ``TrainConfig.trainer``, on the command line
(``--lr_scheduler_type cosine`` or ``--lr-scheduler-type cosine``) or in a study file's ``train`` mapping. Only
:data:`TRAINER_DEFAULTS` differ from the Hugging Face defaults, and only :data:`CONTROLLED` fields are set by
mpretriever itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

# mpretriever's defaults where they differ from TrainingArguments' own: the measured recipe of
# eval/recipe-nfcorpus.yml (see eval/results/recipe-nfcorpus.md), checkpoints and logs sized for small datasets.
TRAINER_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16,
    "num_train_epochs": 4.0,
    "learning_rate": 1e-4,
    "warmup_steps": 0.1,
    "seed": 42,
    "save_steps": 500,
    "save_total_limit": 2,
    "logging_steps": 10,
    "logging_first_step": True,
    "report_to": "none",
}

# Fields mpretriever sets itself, with the option that stands for them.
CONTROLLED: dict[str, str] = {
    "output_dir": "--output",
    "resume_from_checkpoint": "--resume / --resume-from",
    "overwrite_output_dir": "--overwrite",
    "remove_unused_columns": "(mpretriever's collator needs every column)",
    "disable_tqdm": "--no-progress (mpretriever draws its own progress bar)",
    "do_train": "(mpr train always trains)",
    "do_eval": "--eval-split / --dev-queries",
    "do_predict": "(mpr eval)",
    "metric_for_best_model": "--metric-for-best",
    "greater_is_better": "(every retrieval measure is better when higher)",
}

# Fields that must be positive numbers, or numbers >= 0, for any run to make sense; refused before anything is read.
_POSITIVE = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "save_steps",
    "logging_steps",
    "eval_steps",
    "save_total_limit",
)
_NON_NEGATIVE = ("warmup_steps", "weight_decay", "dataloader_num_workers")


class UnknownOptionError(ValueError):
    """An option that is neither mpretriever's nor a ``TrainingArguments`` field (or one mpretriever controls)."""


@cache
def trainer_fields() -> frozenset[str]:
    """The names of every ``TrainingArguments`` field."""
    from transformers import TrainingArguments

    return frozenset(field.name for field in dataclasses.fields(TrainingArguments))


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def check_trainer_options(options: Mapping[str, Any], own: Iterable[str] = ()) -> None:
    """Refuse names that are not ``TrainingArguments`` fields, fields mpretriever controls, and values no run can
    use (learning rate, epochs, batch size, accumulation <= 0; negative warm-up or weight decay; ``max_steps`` 0 or
    below -1). ``own``: mpretriever's option names, offered as suggestions."""
    known = trainer_fields()
    for name in options:
        if name in CONTROLLED:
            raise UnknownOptionError(f"{name} is set by mpretriever: use {CONTROLLED[name]}")
        if name not in known:
            raise UnknownOptionError(
                f"unknown training option {name!r}: neither an mpretriever option nor a Hugging Face "
                f"TrainingArguments field{_suggest(name, known | set(own))}"
            )
    for name in _POSITIVE:
        value = options.get(name)
        if value is not None and not (_is_number(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    for name in _NON_NEGATIVE:
        value = options.get(name)
        if value is not None and not (_is_number(value) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0, got {value}")
    max_steps = options.get("max_steps")
    if max_steps is not None and (not isinstance(max_steps, int) or (max_steps != -1 and max_steps < 1)):
        raise ValueError(f"max_steps must be -1 (use num_train_epochs) or at least 1, got {max_steps}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def added_since(name: str, recorded: bool, requested: Any, defaults: Mapping[str, Any]) -> bool:
    """Whether option ``name``, which a run record lacks (``recorded`` false), was added to mpretriever after the
    record was written and is asked for at its default: then it matches, since a new option's default keeps the
    behaviour of the versions before it."""
    return not recorded and name in defaults and requested == defaults[name]


def split_options(options: Mapping[str, Any], own: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a flat mapping (a study file's ``train``) into mpretriever's options and ``TrainingArguments``
    fields; a name that is neither is refused with the closest names."""
    mine = {name: value for name, value in options.items() if name in own}
    trainer = {name: value for name, value in options.items() if name not in own}
    check_trainer_options(trainer, own)
    return mine, trainer


def given_option_names(arguments: Sequence[str]) -> list[str]:
    """The ``TrainingArguments`` fields a command line gives, in order: ``--name``, ``--name=value``, dashes or
    underscores, and ``--no_name`` / ``--no-name`` for a boolean field that defaults to true."""
    names = []
    for argument in arguments:
        if not argument.startswith("--"):
            continue
        name = argument[2:].split("=", 1)[0].replace("-", "_")
        if name not in trainer_fields() and name.startswith("no_") and name[3:] in trainer_fields():
            name = name[3:]
        names.append(name)
    return names


def parse_trainer_arguments(arguments: Sequence[str]) -> dict[str, Any]:
    """The ``TrainingArguments`` fields given on a command line (``mpr train``'s extra options), parsed with the
    types Hugging Face's own ``HfArgumentParser`` gives them. Only the fields given are returned, so that
    mpretriever's defaults apply to the others."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments)
    namespace, remaining = parser.parse_known_args(list(arguments))
    if remaining:
        unknown = next((argument for argument in remaining if argument.startswith("-")), None)
        if unknown is None:
            raise UnknownOptionError(f"unexpected argument {remaining[0]!r}")
        name = unknown.lstrip("-").split("=", 1)[0].replace("-", "_")
        close = difflib.get_close_matches(name, sorted(trainer_fields()), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join('--' + c.replace('_', '-') for c in close)}?)" if close else ""
        raise UnknownOptionError(f"no such option: {unknown}{hint}")
    options = {name: getattr(namespace, name) for name in given_option_names(arguments)}
    check_trainer_options(options)
    return options


def trainer_help() -> str:
    """Hugging Face's help for every ``TrainingArguments`` field (what ``mpr train --trainer-help`` prints)."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments, prog="mpr train", usage="mpr train [OPTIONS] [--FIELD VALUE ...]")
    return parser.format_help()
