"""What ``--help`` shows: prose reflowed to the terminal, list and example lines kept, defaults that are the code's."""

from __future__ import annotations

import re

import pytest

from mpretriever.cli.app import app, reflow_help
from mpretriever.cli.train import train_command
from mpretriever.training.options import TRAINER_DEFAULTS
from tests.cli.test_cli import run_cli


def test_reflow_joins_prose_lines_and_keeps_paragraphs() -> None:
    docstring = """First line
    of the summary.

    A paragraph written
    over three
    lines.

    Examples:

      mpr train --data nfcorpus
      mpr eval --data nfcorpus
    """
    assert reflow_help(docstring) == (
        "First line of the summary.\n\n"
        "A paragraph written over three lines.\n\n"
        "Examples:\n\n"
        "  mpr train --data nfcorpus\n"
        "  mpr eval --data nfcorpus"
    )


@pytest.mark.parametrize(
    "kept",
    [
        "- a list item\n- another item",
        "[bold]lsepair[/]: one objective\n[bold]infonce[/]: another",
        "Launch it as\nmpr train --data nfcorpus",
        "Several processes:\ntorchrun --nproc-per-node 2 -m mpretriever.cli train",
    ],
)
def test_reflow_keeps_the_break_before_list_markup_and_command_lines(kept: str) -> None:
    assert reflow_help(kept) == kept


def test_every_command_shows_its_docstring_reflowed() -> None:
    commands = [*app.registered_commands]
    for group in app.registered_groups:
        commands += group.typer_instance.registered_commands
    assert len(commands) >= 14
    for command in commands:
        assert command.help == reflow_help(command.callback.__doc__), command.name


def test_a_long_paragraph_wraps_at_the_terminal_width_not_at_the_docstrings(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["study", "--help"], capsys, monkeypatch)
    assert code == 0
    assert "an interrupted training continues from its last checkpoint. A run asked for" in out


def test_train_help_states_the_trainer_defaults_the_code_uses() -> None:
    paragraph = next(p for p in train_command.__doc__.split("\n\n") if "mpretriever's defaults" in p)
    stated = dict(re.findall(r"--([a-z-]+)(?: ([0-9][^\s]*|none))?", paragraph))
    code_defaults = {name.replace("_", "-"): value for name, value in TRAINER_DEFAULTS.items()}
    assert stated.keys() == code_defaults.keys()
    for name, value in code_defaults.items():
        if isinstance(value, bool):
            assert stated[name] == "" and value, name
        elif isinstance(value, str):
            assert stated[name] == value, name
        else:
            assert float(stated[name]) == value, name
