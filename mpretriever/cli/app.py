"""The ``mpr`` command line. Commands are thin: they parse options and call the library."""

from __future__ import annotations

import inspect
import logging
import re
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler

from mpretriever import __version__
from mpretriever.cli.annotate import annotate_command
from mpretriever.cli.collections import collections_app
from mpretriever.cli.eval import eval_command
from mpretriever.cli.export import export_command
from mpretriever.cli.index import index_command
from mpretriever.cli.mine import mine_command
from mpretriever.cli.pipeline import pipeline_app
from mpretriever.cli.quickstart import quickstart_command
from mpretriever.cli.search import search_command
from mpretriever.cli.serve import serve_command
from mpretriever.cli.study import study_command
from mpretriever.cli.train import CONTEXT_SETTINGS as TRAIN_CONTEXT_SETTINGS
from mpretriever.cli.train import train_command
from mpretriever.files import OutputExistsError
from mpretriever.index.connection import QdrantUnavailableError

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
    rich_markup_mode="rich",
)
app.command("train", no_args_is_help=True, context_settings=TRAIN_CONTEXT_SETTINGS)(train_command)
app.command("index", no_args_is_help=True)(index_command)
app.command("search", no_args_is_help=True)(search_command)
app.command("mine", no_args_is_help=True)(mine_command)
app.command("annotate", no_args_is_help=True)(annotate_command)
app.command("eval", no_args_is_help=True)(eval_command)
app.command("quickstart")(quickstart_command)
app.command("serve")(serve_command)
app.command("study", no_args_is_help=True)(study_command)
app.command("export", no_args_is_help=True)(export_command)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(collections_app, name="collections")

# A line that starts a list item, an example or a markup block keeps its line break in --help.
_KEEP_BREAK_BEFORE = re.compile(r"\s|- |\[|mpr |torchrun ")


def reflow_help(docstring: str) -> str:
    """A command's docstring as --help shows it: the prose of each paragraph on one line, for rich to wrap at the
    terminal's width (typer keeps the docstring's own line breaks after the first paragraph), while list items,
    indented examples and markup lines stay on lines of their own."""
    paragraphs = []
    for paragraph in inspect.cleandoc(docstring).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not _KEEP_BREAK_BEFORE.match(line) and not _KEEP_BREAK_BEFORE.match(lines[-1]):
                lines[-1] = f"{lines[-1]} {line}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _reflow_commands(group: typer.Typer) -> None:
    for command in group.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = reflow_help(command.callback.__doc__)
    for subgroup in group.registered_groups:
        if subgroup.typer_instance is not None:
            _reflow_commands(subgroup.typer_instance)


_reflow_commands(app)


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
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "sentence_transformers", "transformers", "haystack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # what transformers.utils.logging.disable_progress_bar() does, without importing transformers (seconds)
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


# The project's other user errors derive from these: DataFormatError, CollectionMismatchError and NoAnswersError
# from ValueError, DatasetNotFoundError from FileNotFoundError. Their modules load torch, datasets or Haystack,
# which `mpr --help` must not wait for, so they are caught through these bases.
USER_ERRORS = (
    OutputExistsError,
    QdrantUnavailableError,
    FileNotFoundError,
    ValueError,
)


def main() -> None:
    """Console entry point: bad input ends with a one-line message and exit code 2, never a bare traceback."""
    try:
        app()
    except USER_ERRORS as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
