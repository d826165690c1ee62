"""The ``mpr`` command line. Commands are thin: they parse options and call the library."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from mpretriever import __version__
from mpretriever.cli.train import train_command
from mpretriever.data.errors import DataFormatError
from mpretriever.data.resolve import DatasetNotFoundError
from mpretriever.training.run import OutputExistsError

console = Console(stderr=True)

app = typer.Typer(
    name="mpr",
    help=(
        "mpretriever: train dense retrievers with multiple positive passages per query "
        "(LSEPair, JointLH, SumMargLH, Rand1LH, InfoNCE), then index, serve and evaluate them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command("train", no_args_is_help=True)(train_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mpretriever {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logging."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


USER_ERRORS = (DataFormatError, DatasetNotFoundError, OutputExistsError, FileNotFoundError, ValueError)


def main() -> None:
    """Console entry point: bad input ends with a one-line message and exit code 2, never a bare traceback."""
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    try:
        app()
    except USER_ERRORS as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
