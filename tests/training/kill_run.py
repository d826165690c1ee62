"""A training run that SIGKILLs itself, for the kill-and-resume tests.

    python -m tests.training.kill_run DATA MODEL OUTPUT after-checkpoint|while-saving STEP

``after-checkpoint``: killed at the end of step STEP + 1, after checkpoint-STEP was written;
``while-saving``: killed while checkpoint-STEP is being written (model saved, optimizer state not yet).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from transformers import TrainerCallback

from mpretriever.training import trainer as trainer_module
from mpretriever.training.run import train
from tests.training.test_kill_resume import config_for


class KillAfterStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_while_saving(step: int) -> None:
    original = trainer_module.MultiPositiveTrainer._save_optimizer_and_scheduler

    def save_then_die(self, output_dir):
        if self.state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, output_dir)

    trainer_module.MultiPositiveTrainer._save_optimizer_and_scheduler = save_then_die


def main() -> None:
    data, model, output, mode, step = sys.argv[1:6]
    callbacks = []
    if mode == "after-checkpoint":
        callbacks.append(KillAfterStep(int(step) + 1))
    else:
        kill_while_saving(int(step))
    train(config_for(Path(data), Path(model), Path(output)), callbacks=callbacks)


if __name__ == "__main__":
    main()
