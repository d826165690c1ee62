"""Bad input through the real command line: every command that reads a dataset (index, train, eval, mine) ends
with ``error: path:line: what is wrong``, exit code 2 and nothing written; reading commands never create a
mistyped embedded Qdrant directory."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli
from tests.conftest import write_jsonl, write_qrels

CORPUS = [
    {"_id": "d1", "title": "heart", "text": "statin heart risk"},
    {"_id": "d2", "title": "", "text": "breast cancer cells"},
    {"_id": "d3", "title": "diet", "text": "fruit vegetable diet"},
    {"_id": "d4", "title": "", "text": "coffee tea sleep"},
]
QUERIES = [{"_id": "q1", "text": "heart statin"}, {"_id": "q2", "text": "cancer cells"}]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1)]
READING_QUERIES = ("train", "eval", "mine")
ALL_COMMANDS = ("index", *READING_QUERIES)


def _dataset(root: Path) -> Path:
    write_jsonl(root / "corpus.jsonl", CORPUS)
    write_jsonl(root / "queries.jsonl", QUERIES)
    write_qrels(root / "qrels" / "train.tsv", QRELS)
    return root


def _output(command: str, directory: Path) -> Path:
    """What ``command`` writes: a Qdrant directory, a run directory, an evaluation directory, a negatives file."""
    return directory / ("negatives.jsonl" if command == "mine" else "output")


def _command(command: str, data: Path, model: Path, output: Path) -> list[str]:
    """Arguments with which ``command`` succeeds on the good dataset and writes ``output``."""
    common = ["--data", str(data), "--model", str(model)]
    if command == "index":
        return ["index", *common, "--collection", "tiny", "--qdrant-path", str(output)]
    if command == "train":
        return [
            "train",
            *common,
            "--split",
            "train",
            "--output",
            str(output),
            "--max-steps",
            "1",
            "--per-device-train-batch-size",
            "2",
        ]
    if command == "eval":
        return ["eval", *common, "--split", "train", "--output", str(output), "--no-cache", "--top-k", "100"]
    return ["mine", "--data", str(data), "--split", "train", "--output", str(output)]


def _append(path: Path, line: bytes) -> None:
    path.write_bytes(path.read_bytes() + line + b"\n")


def _not_utf8(path: Path) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:1] + b"\xe9" + lines[1][1:]  # Latin-1 "é", not UTF-8
    path.write_bytes(b"\n".join(lines))


def _truncate_gzip(path: Path) -> None:
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes())[:-12])
    path.unlink()


Damage = Callable[[Path], None]
CASES: dict[str, tuple[Damage, str, str, tuple[str, ...]]] = {
    # case: (how the dataset is damaged, file at fault, message after "path:", commands that read that file)
    "record-without-id": (
        lambda root: _append(root / "corpus.jsonl", b'{"text": "fish"}'),
        "corpus.jsonl",
        "5: record without an '_id'",
        ALL_COMMANDS,
    ),
    "duplicate-document-id": (
        lambda root: _append(root / "corpus.jsonl", b'{"_id": "d1", "text": "fish"}'),
        "corpus.jsonl",
        "5: duplicate _id 'd1' (first at line 1): ids must be unique",
        ALL_COMMANDS,
    ),
    "duplicate-query-id": (
        lambda root: _append(root / "queries.jsonl", b'{"_id": "q1", "text": "fish"}'),
        "queries.jsonl",
        "3: duplicate _id 'q1' (first at line 1): ids must be unique",
        READING_QUERIES,
    ),
    "corpus-not-utf8": (
        lambda root: _not_utf8(root / "corpus.jsonl"),
        "corpus.jsonl",
        "2: not valid UTF-8 (byte 0xe9",
        ALL_COMMANDS,
    ),
    "qrels-not-utf8": (
        lambda root: _not_utf8(root / "qrels" / "train.tsv"),
        "qrels/train.tsv",
        "2: not valid UTF-8 (byte 0xe9",
        READING_QUERIES,
    ),
    "truncated-corpus-gz": (
        lambda root: _truncate_gzip(root / "corpus.jsonl"),
        "corpus.jsonl.gz",
        "4: truncated or corrupt gzip file",
        ALL_COMMANDS,
    ),
    "truncated-queries-gz": (
        lambda root: _truncate_gzip(root / "queries.jsonl"),
        "queries.jsonl.gz",
        "2: truncated or corrupt gzip file",
        READING_QUERIES,
    ),
    "truncated-qrels-gz": (
        lambda root: _truncate_gzip(root / "qrels" / "train.tsv"),
        "qrels/train.tsv.gz",
        "3: truncated or corrupt gzip file",
        READING_QUERIES,
    ),
    "empty-corpus": (
        lambda root: (root / "corpus.jsonl").write_text(""),
        "corpus.jsonl",
        " no records: the file is empty",
        ALL_COMMANDS,
    ),
    "malformed-json": (
        lambda root: _append(root / "corpus.jsonl", b'{"_id": "d5", "text": "fish"'),
        "corpus.jsonl",
        "5: invalid JSON",
        ALL_COMMANDS,
    ),
}


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_the_good_dataset_passes(command: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """The arguments of the bad-input cases succeed on the undamaged dataset: only the damage makes them fail."""
    output = _output(command, tmp_path)
    code, _, err = run_cli(_command(command, _dataset(tmp_path / "data"), tiny_model_dir, output), capsys, monkeypatch)
    assert code == 0, err
    assert output.exists()


@pytest.mark.parametrize(
    ("case", "command"), [(case, command) for case, (*_, commands) in CASES.items() for command in commands]
)
def test_bad_input_names_file_and_line_and_writes_nothing(
    case: str, command: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    damage, name, message, _ = CASES[case]
    data = _dataset(tmp_path / "data")
    damage(data)
    output = _output(command, tmp_path)
    code, out, err = run_cli(_command(command, data, tiny_model_dir, output), capsys, monkeypatch)
    assert code == 2, err
    assert f"error: {data / name}:{message}" in err
    assert "Traceback" not in err and "Aborted" not in err
    assert "Failed to load JSON" not in err + out  # the datasets library's own log of a bad line
    assert not output.exists()


@pytest.mark.parametrize("value", ["-1", "0"])
def test_max_docs_below_one_is_refused(value: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the usage error's box wraps at the terminal width
    qdrant = tmp_path / "qdrant"
    args = [*_command("index", _dataset(tmp_path / "data"), tiny_model_dir, qdrant), "--max-docs", value]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2
    assert "Invalid value for '--max-docs': Input should be greater than or equal to 1" in " ".join(err.split())
    assert not qdrant.exists()


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("train", "--group-size", "1"),
        ("train", "--max-positives", "0"),
        ("train", "--query-max-length", "0"),
        ("train", "--passage-max-length", "-5"),
        ("index", "--batch-size", "0"),
        ("index", "--timeout", "0"),
    ],
)
def test_numeric_options_out_of_range_are_usage_errors(
    command: str, option: str, value: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the usage error's box wraps at the terminal width
    output = _output(command, tmp_path)
    args = [*_command(command, _dataset(tmp_path / "data"), tiny_model_dir, output), option, value]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 2
    assert f"Invalid value for '{option}': Input should be greater than or equal to" in " ".join(err.split())
    assert not output.exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--save-steps", "0", "save_steps must be a positive number, got 0"),
        ("--save_total_limit", "0", "save_total_limit must be a positive number, got 0"),
        ("--logging-steps", "0", "logging_steps must be a positive number, got 0"),
        ("--dataloader-num-workers", "-1", "dataloader_num_workers must be a number >= 0, got -1"),
        ("--learning_rate=nan", None, "learning_rate must be a positive number, got nan"),
        ("--lerning-rate", "1e-4", "no such option: --lerning-rate (did you mean --learning-rate,"),
        ("--output-dir", "elsewhere", "output_dir is set by mpretriever: use --output"),
        ("--metric-for-best-model", "eval_MRR@10", "metric_for_best_model is set by mpretriever: use --metric-for"),
    ],
)
def test_trainer_options_no_run_can_use_are_usage_errors(
    option: str, value: str | None, message: str, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Hugging Face TrainingArguments fields pass through mpr train, and are checked before anything runs."""
    monkeypatch.setenv("COLUMNS", "300")
    output = _output("train", tmp_path)
    extra = [option] if value is None else [option, value]
    code, _, err = run_cli(
        [*_command("train", _dataset(tmp_path / "data"), tiny_model_dir, output), *extra], capsys, monkeypatch
    )
    assert code == 2
    assert f"Invalid value: {message}" in " ".join(err.split())
    assert not output.exists()


@pytest.mark.parametrize("port", ["0", "70000"])
def test_serve_port_out_of_range_is_a_usage_error(port: str, capsys, monkeypatch) -> None:
    import mpretriever.service

    monkeypatch.setattr(mpretriever.service, "run_server", lambda *args, **kwargs: None)
    monkeypatch.setenv("COLUMNS", "300")
    code, _, err = run_cli(["serve", "--port", port, "--pipeline", "none"], capsys, monkeypatch)
    assert code == 2
    assert "Invalid value for '--port'" in err


def test_index_reads_no_queries(tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    data = _dataset(tmp_path / "data")
    (data / "queries.jsonl").unlink()
    code, _, err = run_cli(_command("index", data, tiny_model_dir, tmp_path / "qdrant"), capsys, monkeypatch)
    assert code == 0, err
    assert "created collection 'tiny'" in err and "4 written" in err


def _reading_command(command: str, data: Path, qdrant: Path) -> list[str]:
    location = ["--collection", "tiny", "--qdrant-path", str(qdrant)]
    if command == "search":
        return ["search", "heart", *location]
    if command == "serve":
        return ["serve", "--pipeline", "none", *location]
    if command == "eval":
        return ["eval", "--data", str(data), "--split", "train", *location]
    output = ["--output", str(data / "negatives.jsonl")]
    return ["mine", "--data", str(data), "--split", "train", "--method", "dense", *output, *location]


@pytest.mark.parametrize("command", ["search", "serve", "eval", "mine"])
def test_reading_commands_refuse_a_missing_qdrant_path(command: str, tmp_path: Path, capsys, monkeypatch) -> None:
    import mpretriever.service

    served: list[object] = []
    monkeypatch.setattr(mpretriever.service, "run_server", lambda *args, **kwargs: served.append(args))
    qdrant = tmp_path / "mistyped"
    code, _, err = run_cli(_reading_command(command, _dataset(tmp_path / "data"), qdrant), capsys, monkeypatch)
    assert code == 2, err
    assert f"error: {qdrant}: does not exist; build a collection there with mpr index" in " ".join(err.split())
    assert not qdrant.exists() and not served


def test_a_pipeline_file_that_is_not_utf8_names_its_line(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "rag.yml"
    path.write_bytes("components:\n  retriever:\n    type: caf\xe9\n".encode("latin-1"))
    code, _, err = run_cli(["pipeline", "run", str(path), "--query", "heart"], capsys, monkeypatch)
    assert code == 2, err
    assert f"error: {path}:3: not valid UTF-8 (byte 0xe9" in err
