"""``mpr`` answers at once: help and argument errors load none of the heavy libraries, and help reads literally."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import click
import pytest
import typer
from typer.testing import CliRunner

from mpretriever.cli.app import USER_ERRORS, app

HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "haystack", "qdrant_client", "datasets")

# Each is run in one fresh interpreter, which then reports the heavy modules it has loaded.
ARGUMENT_LISTS = [
    ["--help"],
    *([command, "--help"] for command in ("train", "index", "search", "mine", "eval", "quickstart", "serve", "study")),
    ["pipeline", "run", "--help"],
    ["eval", "--no-such-option"],
    ["train", "--data", "nfcorpus"],  # --output missing
    ["train", "--data", "nfcorpus", "--output", "runs/x", "--loss", "no-such-loss"],
]

PROBE = """
import json, sys
from typer.testing import CliRunner
from mpretriever.cli.app import app
codes = [CliRunner().invoke(app, args).exit_code for args in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def _clean_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = f"import sys, mpretriever.cli.app; print([m for m in {HEAVY_MODULES!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_help_and_argument_errors_load_no_heavy_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(ARGUMENT_LISTS), json.dumps(HEAVY_MODULES)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["codes"] == [0] * 10 + [2, 2, 2]


def test_mpr_help_returns_quickly() -> None:
    """A generous bound (the machine may be busy): before, ``mpr --help`` took 12-21 s."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mpretriever.cli", "--help"], capture_output=True, timeout=60, check=True)
    assert time.perf_counter() - started < 10


def test_objective_names_of_the_cli_are_the_trainings() -> None:
    from mpretriever.cli.train import OBJECTIVE_NAMES
    from mpretriever.training.objectives import OBJECTIVES

    assert sorted(OBJECTIVE_NAMES) == sorted(OBJECTIVES)


def test_project_errors_are_user_errors() -> None:
    """The CLI catches them through light base classes, so that it need not import their heavy modules."""
    from mpretriever.data.errors import DataFormatError
    from mpretriever.data.resolve import DatasetNotFoundError
    from mpretriever.evaluation.qa import NoAnswersError
    from mpretriever.index.collection import CollectionMismatchError

    for error in (DataFormatError, DatasetNotFoundError, NoAnswersError, CollectionMismatchError):
        assert issubclass(error, USER_ERRORS), error


def _help(*args: str) -> str:
    """The rendered help without colours, box drawing or line wrapping (whitespace collapsed)."""
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def test_placeholders_in_help_survive_rendering() -> None:
    train = _help("train")
    assert "qrels/<split>.tsv" in train
    assert "query-id<TAB>doc-id" in train
    assert "grade[, source]" in train
    evaluate = _help("eval")
    assert "qrels/SPLIT.tsv" in evaluate
    assert "[default: the project's pipelines/rag.yml]" in evaluate
    assert "pip install 'mpretriever[onnx]'" in evaluate


def test_eval_help_examples_write_outside_the_tracked_eval_folder() -> None:
    shown = _help("eval")
    assert "--output runs/" in shown
    assert not re.search(r"(--output|-o) eval/", shown)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append(((*prefix, name), command))
    return found


@pytest.mark.parametrize("path", [path for path, _ in _commands(typer.main.get_group(app))], ids=" ".join)
def test_every_option_help_is_shown_as_written(path: tuple[str, ...]) -> None:
    """Rich markup would swallow an unescaped '[name]'; every option's help must come out word for word."""
    command = dict(_commands(typer.main.get_group(app)))[path]
    shown = _help(*path)
    for parameter in command.params:
        text = getattr(parameter, "help", None)
        if text:
            expected = " ".join(text.replace("\\[", "[").split())
            assert expected in shown, f"{parameter.name}: {expected!r}"
