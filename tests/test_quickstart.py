"""mpr quickstart end to end on the tiny model and dataset: a fine-tuned model, two collections, two evaluations
and the comparison table."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import statistics
from pathlib import Path

import typer
from rich.console import Console

from mpretriever.cli.app import app
from mpretriever.data import BeirDataset
from mpretriever.evaluation.metrics import parse_measures
from mpretriever.evaluation.retrieval import EvalReport, ModeResult
from mpretriever.index import QdrantSettings
from mpretriever.index.versions import alias_target, real_collections
from mpretriever.quickstart import QuickstartConfig, QuickstartOutcome, comparison_table, run_quickstart, summary
from tests.cli.test_cli import run_cli


def test_quickstart_trains_indexes_evaluates_and_compares(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    config = QuickstartConfig(
        data=str(tiny_beir),
        output=tmp_path / "qs",
        model=str(tiny_model_dir),
        max_steps=2,
        train={"per_device_train_batch_size": 4},
        progress=False,
    )
    outcome = run_quickstart(config)
    assert outcome.dev_curve is not None
    assert [point.step for point in outcome.dev_curve.points] == [0, 1, 2]  # the start, the middle, the end
    assert (outcome.model_dir / "mpretriever.json").is_file()
    manifest = json.loads((outcome.model_dir / "mpretriever.json").read_text())
    assert manifest["split"] == "train-graded" and manifest["label_filter"]["min_grade"] == 3
    client = QdrantSettings(path=str(tmp_path / "qs" / "qdrant")).connect()
    try:
        counts = {name: client.count(f"{outcome.base.dataset}-{name}").count for name in ("base", "tuned")}
        served = {name: alias_target(client, f"{outcome.base.dataset}-{name}") for name in ("base", "tuned")}
        assert sorted(real_collections(client)) == sorted(served.values())  # aliases, one version each
    finally:
        client.close()
    assert counts["base"] == counts["tuned"] == outcome.base.corpus_documents > 0
    for report in (outcome.base, outcome.tuned):
        assert set(report.result("qdrant").means) == {"nDCG@10", "Recall@100", "MRR@10", "MAP@100"}
        assert (report.output / "metrics.json").is_file()
    assert outcome.base.fingerprint != outcome.tuned.fingerprint  # the tuned collection holds the tuned model
    # Dev is the whole corpus here, and the tiny model's maximum is the training passage length (128): the dev
    # evaluation's embeddings of the start and of the kept step are what the two collections hold.
    assert outcome.indexed_from_cache == ("base", "tuned")
    assert any("with the base and tuned vectors from dev" in line for line in summary(outcome))
    base_scores = [hit.score for hit in outcome.base.result("qdrant").run["q0"]]
    assert base_scores != [hit.score for hit in outcome.tuned.result("qdrant").run["q0"]]
    table = comparison_table(outcome, "t")
    assert table.row_count == 4 and len(table.columns) == 5
    assert outcome.qdrant_path == tmp_path / "qs" / "qdrant"
    assert outcome.example_query in BeirDataset(tiny_beir).queries.values()


class _Stop(Exception):
    pass


def _trainer_options(monkeypatch, run) -> dict:
    """The ``TrainingArguments`` fields the quickstart asks ``train`` for, without training."""
    import mpretriever.quickstart

    asked = []

    def capture(config, **_):
        asked.append(config.trainer_options())
        raise _Stop

    monkeypatch.setattr(mpretriever.quickstart, "train", capture)
    with contextlib.suppress(_Stop, SystemExit):
        run()
    assert len(asked) == 1
    return asked[0]


def test_quickstart_trains_two_epochs_unless_told_otherwise(
    tiny_beir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from mpretriever.training.options import TRAINER_DEFAULTS

    def run_config() -> None:
        run_quickstart(QuickstartConfig(data=str(tiny_beir), output=tmp_path / "a", progress=False))

    assert (
        _trainer_options(monkeypatch, run_config)["num_train_epochs"] == 2.0 == TRAINER_DEFAULTS["num_train_epochs"] / 2
    )
    arguments = ["quickstart", "--data", str(tiny_beir), "--output", str(tmp_path / "b"), "--num-train-epochs", "4"]
    assert _trainer_options(monkeypatch, lambda: run_cli(arguments, capsys, monkeypatch))["num_train_epochs"] == 4.0


def test_quickstart_evaluates_dev_at_the_start_middle_and_end_unless_told_otherwise(
    tiny_beir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from mpretriever.training.run import DEV_EVAL_STEPS

    def run_config() -> None:
        run_quickstart(QuickstartConfig(data=str(tiny_beir), output=tmp_path / "a", progress=False))

    options = _trainer_options(monkeypatch, run_config)
    assert (options["eval_steps"], options["save_steps"], options["eval_on_start"]) == (0.5, 0.5, True)
    assert DEV_EVAL_STEPS != 0.5, "mpr train evaluates more often than the quickstart"
    arguments = ["quickstart", "--data", str(tiny_beir), "--output", str(tmp_path / "b"), "--eval-steps", "0.25"]
    assert _trainer_options(monkeypatch, lambda: run_cli(arguments, capsys, monkeypatch))["eval_steps"] == 0.25


def test_quickstart_cli_refuses_to_overwrite(tiny_beir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "keep.txt").write_text("earlier results")
    arguments = ["quickstart", "--data", str(tiny_beir), "--output", str(tmp_path / "qs")]
    code, _, err = run_cli(arguments, capsys, monkeypatch)
    assert code == 2 and "already exists" in err
    assert (tmp_path / "qs" / "keep.txt").read_text() == "earlier results"


def _report(collection: str, per_query: dict[str, dict[str, float]], tmp_path: Path) -> EvalReport:
    labels = list(next(iter(per_query.values())))
    means = {label: statistics.fmean(values[label] for values in per_query.values()) for label in labels}
    return EvalReport(
        model=collection,
        fingerprint=None,
        backend="torch",
        passage_max_length=None,
        dataset="nfcorpus",
        dataset_path="nfcorpus",
        split="test",
        measures=parse_measures(labels),
        top_k=100,
        queries=len(per_query),
        judged_queries=len(per_query),
        without_relevant=0,
        sampled=False,
        results=[ModeResult("qdrant", {query: [] for query in per_query}, per_query, means, 0.0)],
        collection=collection,
        output=tmp_path / f"eval-{collection}",
    )


def _fake_outcome(tmp_path: Path) -> QuickstartOutcome:
    """Fine-tuning raises nDCG@10 on every one of 20 queries (significant) and leaves MRR@10 mixed (not)."""
    base = {f"q{i}": {"nDCG@10": 0.3 + 0.01 * (i % 3), "MRR@10": 0.5} for i in range(20)}
    tuned = {f"q{i}": {"nDCG@10": 0.4 + 0.01 * (i % 2), "MRR@10": 0.5 + (0.1 if i % 2 else -0.1)} for i in range(20)}
    return QuickstartOutcome(
        base=_report("nfcorpus-base", base, tmp_path),
        tuned=_report("nfcorpus-tuned", tuned, tmp_path),
        model_dir=tmp_path / "model",
        timings={"train_s": 60.0, "index_s": 30.0, "eval_s": 30.0},
        qdrant_path=tmp_path / "qdrant dir",
        dev_curve=None,
        example_query="vitamin D's effect",
    )


def test_comparison_table_marks_the_significant_differences(tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), width=150, no_color=True)
    console.print(comparison_table(_fake_outcome(tmp_path), "base vs tuned"))
    rows = {line.split("│")[1].strip(): line for line in console.file.getvalue().splitlines() if "│" in line}
    assert "+0.0955†" in rows["nDCG@10"]
    assert "†" not in rows["MRR@10"]
    assert "† p < 0.05" in console.file.getvalue()


def test_summary_names_the_collections_and_a_search_command_that_parses(tmp_path: Path) -> None:
    outcome = _fake_outcome(tmp_path)
    lines = summary(outcome)
    text = "\n".join(lines)
    assert "nfcorpus-base" in text and "nfcorpus-tuned" in text and str(outcome.qdrant_path) in text
    command = shlex.split(next(line for line in lines if "mpr search" in line).split(": ", 1)[1])
    assert command[:3] == ["mpr", "search", "vitamin D's effect"]
    search = typer.main.get_command(app).commands["search"]  # type: ignore[attr-defined]
    parsed = search.make_context("search", command[2:]).params
    assert parsed["collection"] == "nfcorpus-tuned" and parsed["qdrant_path"] == str(outcome.qdrant_path)


def test_summary_says_in_plain_text_whether_the_dev_selected_model_beats_the_start(tmp_path: Path) -> None:
    from dataclasses import replace

    from mpretriever.training.dev_curve import DevCurve, DevPoint

    points = (
        DevPoint(0, 0.0, {"nDCG@10": 0.30}),
        DevPoint(10, 1.0, {"nDCG@10": 0.32}),
        DevPoint(20, 2.0, {"nDCG@10": 0.31}),
    )
    curve = DevCurve({"queries": 5}, "5 queries of x split dev, full corpus (9 passages)", "nDCG@10", points, 10)
    lines = summary(replace(_fake_outcome(tmp_path), dev_curve=curve, steps=20))
    assert "dev nDCG@10 0.3200 at step 10 (saved), +0.0200 over 0.3000 for the starting model" in lines
    assert not any("[" in line and "[/" in line for line in lines)  # no rich markup printed as text
    worse = replace(curve, points=(DevPoint(0, 0.0, {"nDCG@10": 0.40}), *points[1:]))
    text = "\n".join(summary(replace(_fake_outcome(tmp_path), dev_curve=worse)))
    assert "no evaluated step beat the starting model on dev: nDCG@10 0.3200 at step 10 (saved)" in text
