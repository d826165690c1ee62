"""A rich progress bar for the Trainer, replacing its tqdm bar and its printed log dictionaries."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


class RichProgressCallback(TrainerCallback):
    """Shows steps done, elapsed and remaining time, the latest loss and learning rate; prints each log line and
    each dev evaluation's figures."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, loss="-")
        self.progress.start()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.progress is None or self.task is None or not logs:
            return
        figures = {key.removeprefix("eval_"): value for key, value in logs.items() if key.startswith("eval_")}
        if figures:
            seconds = figures.pop("runtime", None)
            took = f"  ({seconds:.0f} s)" if isinstance(seconds, float | int) else ""
            shown = "  ".join(f"{label} {value:.4f}" for label, value in figures.items())
            self.progress.console.log(f"step {state.global_step}/{state.max_steps}  dev {shown}{took}")
        if "loss" not in logs:
            return
        self.progress.update(self.task, loss=f"{logs['loss']:.4f}")
        learning_rate = logs.get("learning_rate")
        lr = f"  lr {learning_rate:.2e}" if isinstance(learning_rate, float) else ""
        self.progress.console.log(f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}{lr}")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
