"""Finding the checkpoint to resume from, and never one that a crash left half-written; emptying a run for
``--overwrite`` so that nothing of it can be resumed.

The Trainer writes a checkpoint's files one after another and ``trainer_state.json`` last. A checkpoint is
complete when that file parses and names the step of its directory, and the model and its manifest are there; a
process killed while saving (SIGKILL, out of memory, a pre-empted node) leaves a directory that fails this test,
and resuming skips it, with a warning, for the newest complete one.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from mpretriever.model.manifest import MANIFEST_NAME

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
MODEL_FILES = ("model.safetensors", "pytorch_model.bin")
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_step(directory: Path) -> int | None:
    match = _CHECKPOINT.match(directory.name)
    return int(match.group(1)) if match else None


def incomplete_reason(directory: Path) -> str | None:
    """Why ``directory`` is not a complete checkpoint, or ``None`` when it is."""
    state_file = directory / TRAINER_STATE
    if not state_file.is_file():
        return f"no {TRAINER_STATE} (the save was interrupted)"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{TRAINER_STATE} is truncated"
    step = checkpoint_step(directory)
    if step is not None and state.get("global_step") != step:
        return f"{TRAINER_STATE} is for step {state.get('global_step')}, not {step}"
    if not (directory / MANIFEST_NAME).is_file():
        return f"no {MANIFEST_NAME}"
    if not any(next(directory.rglob(name), None) for name in MODEL_FILES):
        return "no model weights"
    return None


def last_complete_checkpoint(output: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` directory in ``output`` (incomplete ones are skipped with a warning)."""
    if not output.is_dir():
        return None
    candidates = sorted(
        (path for path in output.iterdir() if path.is_dir() and checkpoint_step(path) is not None),
        key=lambda path: checkpoint_step(path) or 0,
        reverse=True,
    )
    for candidate in candidates:
        reason = incomplete_reason(candidate)
        if reason is None:
            return candidate
        logger.warning("skipping incomplete checkpoint %s: %s", candidate, reason)
    return None


def _checkpoints(output: Path) -> list[Path]:
    return [path for path in output.iterdir() if path.is_dir() and checkpoint_step(path) is not None]


def is_training_run(directory: Path) -> bool:
    """Whether ``directory`` holds what ``mpr train`` writes: a run manifest or ``checkpoint-N`` directories."""
    return (directory / MANIFEST_NAME).is_file() or bool(_checkpoints(directory))


def remove_run(output: Path) -> None:
    """Empty the run directory ``output`` (see :func:`is_training_run`), in an order that is safe to interrupt.

    Every checkpoint loses its ``trainer_state.json`` first, so from then on none is resumable; the checkpoints go
    after the run's other files and the manifest goes last, so that a removal killed halfway leaves a directory
    that still reads as a run, for the next ``--overwrite`` to finish.
    """
    checkpoints = _checkpoints(output)
    for checkpoint in checkpoints:
        (checkpoint / TRAINER_STATE).unlink(missing_ok=True)
    manifest = output / MANIFEST_NAME
    last = [*checkpoints, manifest]
    for path in [path for path in output.iterdir() if path not in last] + last:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
