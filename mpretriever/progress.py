"""The console progress bar of long commands (indexing, mining, evaluation, annotation): rich, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """The task's speed, e.g. ``3.2 judgements/s`` (blank until rich has measured it)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


def task_progress(console: Console | None = None, enabled: bool = True, rate_unit: str | None = None) -> Progress:
    """A progress display whose tasks show their description, a bar, done/total, elapsed and remaining time, and
    with ``rate_unit`` the speed (``rate_unit``/s)."""
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if rate_unit is not None:
        columns.append(RateColumn(rate_unit))
    return Progress(*columns, console=console or Console(stderr=True), disable=not enabled)
