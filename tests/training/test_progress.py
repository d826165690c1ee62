"""The training progress bar prints each logged loss and each dev evaluation's figures."""

from __future__ import annotations

import io

from rich.console import Console
from transformers import TrainerControl, TrainerState, TrainingArguments

from mpretriever.training.progress import RichProgressCallback


def test_losses_and_dev_figures_are_printed(tmp_path) -> None:
    stream = io.StringIO()
    callback = RichProgressCallback(Console(file=stream, width=200, force_terminal=False))
    arguments = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state = TrainerState(max_steps=10, global_step=0, is_world_process_zero=True)
    control = TrainerControl()
    callback.on_train_begin(arguments, state, control)
    state.global_step = 4
    callback.on_log(arguments, state, control, logs={"loss": 1.25, "learning_rate": 1e-4})
    callback.on_log(arguments, state, control, logs={"eval_nDCG@10": 0.3251, "eval_MRR@10": 0.5, "eval_runtime": 12.0})
    callback.on_train_end(arguments, state, control)
    printed = stream.getvalue()
    assert "step 4/10  loss 1.2500  lr 1.00e-04" in printed
    assert "step 4/10  dev nDCG@10 0.3251  MRR@10 0.5000  (12 s)" in printed
