"""Resuming continues the checkpoint's run, never another one.

A resumed run records its options in its manifest, so a request whose options differ from those the checkpoint
was trained with would produce a model that its manifest describes wrongly (another loss, learning rate, batch
size, passage length, ...). The request's manifest is therefore compared with the checkpoint's, and any
difference outside :data:`MAY_CHANGE_ON_RESUME` is refused with the full list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mpretriever.model.manifest import RunManifest
from mpretriever.training.options import added_since

# Options that change how a run is saved, logged or executed, never what it computes (GradCache gives the same
# gradients with less memory). The step budget (--max-steps, --epochs) is not among them: it shapes the learning
# rate schedule from the first step; to train a finished run further, start a new run with --model set to it.
MAY_CHANGE_ON_RESUME = frozenset(
    {
        "save_steps",
        "save_total_limit",
        "logging_steps",
        "logging_first_step",
        "logging_dir",
        "report_to",
        "run_name",
        "dataloader_num_workers",
        "dataloader_prefetch_factor",
        "dataloader_persistent_workers",
        "grad_cache",
    }
)

# What a manifest says about one session or one save rather than about the run's options.
_SESSION_FIELDS = frozenset(
    {
        "created_at",
        "mpretriever_version",
        "format_version",
        "final_train_loss",
        "train_runtime_s",
        "mean_train_loss",
        "global_steps",
        "dev_evaluation",
    }
)
_GROUPS = ("encoder", "hyperparameters", "label_filter", "loss_options")
# Manifest fields named after the command-line option that sets them where the names differ.
_OPTION_NAMES = {
    ("base_model",): "model",
    ("dataset",): "data",
    ("loss_options", "normalize"): "normalize_loss",
}
_NOT_RECORDED = object()


class ResumeMismatchError(ValueError):
    """A resume was asked with options other than those of the checkpoint's run."""


def _options(manifest: RunManifest) -> dict[tuple[str, ...], Any]:
    """The manifest's values by field path (``("hyperparameters", "learning_rate")``), as they read from JSON."""
    data = json.loads(json.dumps(manifest.to_dict(), default=str))
    options: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        if key in _GROUPS and isinstance(value, dict):
            options.update({(key, inner): inner_value for inner, inner_value in value.items()})
        else:
            options[(key,)] = value
    return {path: value for path, value in options.items() if path[-1] not in _SESSION_FIELDS}


def _name(path: tuple[str, ...]) -> str:
    return _OPTION_NAMES.get(path, path[-1])


def _show(value: Any) -> str:
    return "not recorded" if value is _NOT_RECORDED else json.dumps(value, ensure_ascii=False)


def manifest_differences(
    checkpoint: RunManifest, requested: RunManifest, defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """``option: checkpoint value vs requested value`` for every option that differs and may not change.

    An option the checkpoint does not record (added to mpretriever after it was written) matches when it is
    requested at its value in ``defaults`` (a new option's default keeps the behaviour of the versions before)."""
    recorded, asked = _options(checkpoint), _options(requested)
    defaults = defaults or {}
    differences = []
    for path in sorted(recorded.keys() | asked.keys(), key=lambda path: (_name(path), path)):
        if path[0] == "hyperparameters" and path[-1] in MAY_CHANGE_ON_RESUME:
            continue
        before, after = recorded.get(path, _NOT_RECORDED), asked.get(path, _NOT_RECORDED)
        name = _name(path)
        if added_since(name, before is not _NOT_RECORDED, after, defaults):
            continue
        if before != after:
            differences.append(f"{_name(path)}: {_show(before)} in the checkpoint vs {_show(after)} requested")
    return differences


def check_resume_matches(checkpoint: Path, requested: RunManifest, defaults: Mapping[str, Any] | None = None) -> None:
    """Refuse to resume ``checkpoint`` with options that differ from its run's (raises ResumeMismatchError);
    ``defaults``: see :func:`manifest_differences`."""
    differences = manifest_differences(RunManifest.load(checkpoint), requested, defaults)
    if differences:
        listed = "".join(f"\n  {difference}" for difference in differences)
        raise ResumeMismatchError(
            f"{checkpoint}: cannot resume this run with other options; they differ in:{listed}\n"
            "Resume with the checkpoint's options, or start a new run (another --output, or --overwrite). "
            f"Only {', '.join(sorted(_name(('hyperparameters', field)) for field in MAY_CHANGE_ON_RESUME))} may change "
            "on resume."
        )
