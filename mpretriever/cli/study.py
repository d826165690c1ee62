"""``mpr study``: train every objective of a study file, evaluate them all and write the report."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import typer
from rich.console import Console


def study_command(
    study_file: Path = typer.Argument(..., help="Study YAML file, e.g. eval/nfcorpus.yml."),
    output: Path | None = typer.Option(None, help="Study directory \\[default: runs/study/<study name>]."),
    objective: list[str] | None = typer.Option(None, help="Run only this objective (repeatable)."),
    condition: list[str] | None = typer.Option(None, help="Run only this condition (repeatable)."),
    seed: list[int] | None = typer.Option(None, help="Run this seed (repeatable) \\[default: the study's seeds]."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Train nothing: report every finished run in the study directory."
    ),
    plot: bool = typer.Option(True, help="Draw study.png."),
) -> None:
    """Train each objective of the study under each condition and seed, evaluate every model and the base model,
    and write report.md (tables with paired t-tests against the base model and InfoNCE), results.json and
    study.png into the study directory.

    The study resumes: finished runs and evaluations are reused, an interrupted training continues from its last
    checkpoint. A run asked for with other options than the one on disk is refused.

    Example: mpr study eval/nfcorpus.yml --condition grade-3
    """
    from mpretriever.study import collect_study, load_study, run_study, write_report

    console = Console(stderr=True)
    config = load_study(study_file).select(objective, condition, seed)
    output = output or Path("runs/study") / config.name
    started = time.perf_counter()
    evaluated = collect_study(config, output) if report_only else run_study(config, output, console=console)
    command = shlex.join(["mpr", *sys.argv[1:]]) if sys.argv[1:2] == ["study"] else None
    wall_time_s = None if report_only else time.perf_counter() - started
    written = write_report(config, evaluated, output, command, wall_time_s, plot=plot)
    typer.echo((output / "report.md").read_text(encoding="utf-8"))
    console.print("written: " + ", ".join(str(path) for path in written))
