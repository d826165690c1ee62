"""The study driver: its file format, a whole (tiny) study run, resuming, refusals and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpretriever.cli.app import app
from mpretriever.data import DataFormatError
from mpretriever.files import OutputExistsError
from mpretriever.study import (
    EvaluatedModel,
    collect_study,
    load_study,
    run_study,
    study_from_dict,
    write_report,
)
from mpretriever.study.report import condition_table, dev_selection_lines, mean_per_query
from mpretriever.study.runner import RUN_RECORD, run_directory

TINY_TRAIN = {
    "split": "train-graded",
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "group_size": 4,
    "max_positives": 2,
    "learning_rate": 1.0e-3,
    "warmup_steps": 0,
    "query_max_length": 16,
    "passage_max_length": 32,
    "save_steps": 1000,
}


def tiny_study(tiny_beir: Path, tiny_model_dir: Path, **changes) -> dict:
    definition = {
        "name": "tiny",
        "data": str(tiny_beir),
        "model": str(tiny_model_dir),
        "objectives": ["infonce", "lsepair"],
        "seeds": [1],
        "eval_split": "test",
        "measures": ["nDCG@10", "Recall@10"],
        "train": dict(TINY_TRAIN),
        "conditions": {
            "strong": {"train": {"min_grade": 3}},
            "all-random-50": {"train": {"min_grade": 1}, "noise": {"share": 0.5, "kind": "random"}},
        },
    }
    return {**definition, **changes}


def test_load_study_reads_the_shipped_study_files() -> None:
    root = Path(__file__).resolve().parents[2] / "eval"
    for path in sorted(root.rglob("*.yml")):
        config = load_study(path)
        assert config.objectives and config.conditions, path
        assert config.primary_measure == "nDCG@10"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ndata: d\nobjectives: [lsepair]\nconditions: {a: {}}\nbogus: 1\n", "unknown keys \\['bogus'\\]"),
        ("name: x\ndata: d\nobjectives: [nope]\nconditions: {a: {}}\n", "unknown objectives"),
        ("name: x\ndata: d\nobjectives: [lsepair]\nconditions: {a: {train: {loss: x}}}\n", "set by the study"),
        ("name: x\ndata: d\nobjectives: [lsepair]\nconditions: {a: {noise: {share: 2}}}\n", "between 0 and 1"),
        ("name: x\ndata: d\nobjectives: [lsepair]\nconditions: {}\n", "at least one"),
        ("name: x\n  data: [\n", "invalid YAML"),
    ],
)
def test_bad_study_files_are_reported_with_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "study.yml"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message) as error:
        load_study(path)
    assert str(path) in str(error.value)


def test_select_restricts_and_refuses_what_is_not_in_the_study(tiny_beir: Path, tiny_model_dir: Path) -> None:
    config = study_from_dict(tiny_study(tiny_beir, tiny_model_dir))
    assert config.select(objectives=["lsepair"]).objectives == ["lsepair"]
    assert [c.name for c in config.select(conditions=["strong"]).conditions] == ["strong"]
    assert config.select(seeds=[7, 8]).seeds == [7, 8]
    with pytest.raises(ValueError, match="not in the study"):
        config.select(objectives=["jointlh"])


def test_a_tiny_study_trains_evaluates_reports_and_resumes(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = study_from_dict(tiny_study(tiny_beir, tiny_model_dir))
    output = tmp_path / "study"
    evaluated = run_study(config, output, progress=False)

    assert [(m.condition, m.objective) for m in evaluated] == [
        (None, "base"),
        ("strong", "infonce"),
        ("strong", "lsepair"),
        ("all-random-50", "infonce"),
        ("all-random-50", "lsepair"),
    ]
    for model in evaluated:
        assert set(model.means) == {"nDCG@10", "Recall@10"}
        assert len(model.per_query()) == 2  # the tiny test split: 2 queries with relevant documents
    # the noisy condition trains on a written copy of the labels: half of each query's 3 positives replaced
    noisy = (output / "conditions" / "all-random-50" / "qrels.tsv").read_text().splitlines()
    assert sum(line.endswith("\tnoise") for line in noisy) == 12 * 2
    record = json.loads((run_directory(output, "all-random-50", "lsepair", 1) / RUN_RECORD).read_text())
    assert record["train"]["qrels_file"].endswith("qrels.tsv") and record["noise"]["share"] == 0.5
    manifest = json.loads((run_directory(output, "strong", "lsepair", 1) / "model" / "mpretriever.json").read_text())
    assert manifest["loss"] == "lsepair" and manifest["label_filter"]["min_grade"] == 3

    # resuming reuses every model and evaluation: same numbers, nothing retrained
    weights = run_directory(output, "strong", "infonce", 1) / "model" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    again = run_study(config, output, progress=False)
    assert [m.means for m in again] == [m.means for m in evaluated]
    assert weights.stat().st_mtime_ns == before
    collected = collect_study(config, output)
    assert [(m.condition, m.objective, m.seed, m.means) for m in collected] == [
        (m.condition, m.objective, m.seed, m.means) for m in evaluated
    ]

    written = write_report(config, evaluated, output, command="mpr study tiny.yml", wall_time_s=12.0)
    report = (output / "report.md").read_text()
    assert "## strong" in report and "## all-random-50" in report and "## All conditions" in report
    assert "mpr study tiny.yml" in report
    results = json.loads((output / "results.json").read_text())
    assert set(results["conditions"]) == {"strong", "all-random-50"}
    assert {model["objective"] for model in results["models"]} == {"base", "infonce", "lsepair"}
    assert (output / "study.png") in written and (output / "study.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_directory_with_other_options_is_refused(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "study"
    first = study_from_dict(tiny_study(tiny_beir, tiny_model_dir, objectives=["lsepair"]))
    run_study(first.select(conditions=["strong"]), output, progress=False)
    changed = study_from_dict(
        tiny_study(tiny_beir, tiny_model_dir, objectives=["lsepair"], train={**TINY_TRAIN, "learning_rate": 0.5})
    )
    with pytest.raises(OutputExistsError, match="learning_rate"):
        run_study(changed.select(conditions=["strong"]), output, progress=False)


def test_a_condition_with_bm25_negatives_mines_them_once_and_trains_with_them(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    definition = tiny_study(
        tiny_beir,
        tiny_model_dir,
        objectives=["lsepair"],
        conditions={
            "mined": {"train": {"min_grade": 3}, "negatives": {"skip_top": 1, "depth": 20, "max_negatives": 3}}
        },
    )
    output = tmp_path / "study"
    run_study(study_from_dict(definition), output, progress=False)
    mined = output / "conditions" / "mined" / "bm25-negatives.jsonl"
    records = [json.loads(line) for line in mined.read_text().splitlines()]
    assert records and all(1 <= len(record["negatives"]) <= 3 for record in records)
    manifest = json.loads((run_directory(output, "mined", "lsepair", 1) / "model" / "mpretriever.json").read_text())
    assert manifest["hyperparameters"]["negatives"] == str(mined)
    with pytest.raises(ValueError, match="skip_top"):
        study_from_dict({**definition, "conditions": {"bad": {"negatives": {"skip_top": 50, "depth": 10}}}})


def _model(tmp_path: Path, objective: str, seed: int | None, values: dict[str, float]) -> EvaluatedModel:
    path = tmp_path / f"{objective}-{seed}.json"
    path.write_text(json.dumps({query: {"nDCG@10": value} for query, value in values.items()}))
    mean = sum(values.values()) / len(values)
    return EvaluatedModel(None if objective == "base" else "c", objective, seed, {"nDCG@10": mean}, path)


def test_report_marks_significance_against_base_and_infonce(tmp_path: Path) -> None:
    queries = [f"q{i}" for i in range(40)]
    base = {q: 0.3 + 0.01 * (i % 5) for i, q in enumerate(queries)}
    infonce = {q: value + (0.01 if i % 2 else -0.01) for i, (q, value) in enumerate(base.items())}  # no change
    better = {q: value + 0.1 + 0.002 * (i % 4) for i, (q, value) in enumerate(base.items())}  # clearly better
    models = [
        _model(tmp_path, "base", None, base),
        _model(tmp_path, "infonce", 1, infonce),
        _model(tmp_path, "lsepair", 1, better),
        _model(tmp_path, "lsepair", 2, {q: v + 0.02 for q, v in better.items()}),
    ]
    config = study_from_dict(
        {
            "name": "n",
            "data": "d",
            "objectives": ["infonce", "lsepair"],
            "conditions": {"c": {}},
            "measures": ["nDCG@10"],
        }
    )
    lines, rows = condition_table(config, models, "c")
    infonce_row, lsepair_row = lines[3], lines[4]
    assert "†" not in infonce_row and "‡" not in infonce_row
    assert "†" in lsepair_row and "‡" in lsepair_row and "⁻" not in lsepair_row
    assert "±" in lsepair_row  # two seeds: mean and spread
    lsepair = rows[1]["measures"]["nDCG@10"]
    assert lsepair["mean"] == pytest.approx(sum(base.values()) / 40 + 0.1 + 0.01 + 0.002 * 1.5, abs=1e-3)
    assert lsepair["p_vs_base_holm"] < 0.05 and lsepair["p_vs_infonce_holm"] < 0.05
    averaged = mean_per_query(models[2:])
    assert averaged["q0"]["nDCG@10"] == pytest.approx(better["q0"] + 0.01)


def test_mpr_study_command_writes_the_report(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny_study(tiny_beir, tiny_model_dir, objectives=["lsepair"])))
    output = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["study", str(path), "--output", str(output), "--condition", "strong", "--no-plot"]
    )
    assert result.exit_code == 0, result.output
    assert "| lsepair |" in (output / "report.md").read_text()
    assert not (output / "study.png").exists()
    (output / "report.md").unlink()
    again = CliRunner().invoke(app, ["study", str(path), "--output", str(output), "--report-only", "--no-plot"])
    assert again.exit_code == 0, again.output
    assert "| lsepair |" in (output / "report.md").read_text()
    empty = CliRunner().invoke(app, ["study", str(path), "--output", str(tmp_path / "nothing"), "--report-only"])
    assert empty.exit_code != 0 and "not been evaluated" in str(empty.exception)


def test_noisy_labels_replace_only_the_filters_positives_and_keep_the_rest_judged(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from mpretriever.data import BeirDataset, load_qrels
    from mpretriever.data.noise import NOISE_SOURCE
    from mpretriever.study.runner import _train_config, training_labels

    noisy_strong = {"train": {"min_grade": 3, "sources": ["human"]}, "noise": {"share": 1.0, "kind": "random"}}
    config = study_from_dict(tiny_study(tiny_beir, tiny_model_dir, conditions={"noisy-strong": noisy_strong}))
    (condition,) = config.conditions
    dataset = BeirDataset(tiny_beir)
    path = training_labels(config, condition, dataset, tmp_path / "labels", progress=False)
    noisy = load_qrels(path, dataset.queries, dataset.doc_index)
    for query_id, judgements in dataset.qrels("train-graded").items():
        weaker = {doc_id: judgement.grade for doc_id, judgement in judgements.items() if judgement.grade < 3}
        # grades 1 and 2 stay judged, so that training with min_grade 3 still ignores them
        assert {d: j.grade for d, j in noisy[query_id].items() if j.source != NOISE_SOURCE} == weaker
        assert [j.grade for j in noisy[query_id].values() if j.source == NOISE_SOURCE] == [3]
    train_config = _train_config(
        config, condition, "lsepair", 1, dataset, path, None, tmp_path / "model", progress=False
    )
    assert train_config.sources == ["human", NOISE_SOURCE]  # the false positives count as the true ones did


def test_a_study_condition_can_select_on_a_dev_set_and_the_report_says_what_was_kept(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Training options of mpr train and TrainingArguments fields pass through a study file; a run with a dev set
    keeps its best checkpoint, and the report lists the kept step against the starting model's dev figure."""
    conditions = {
        "dev": {"train": {"dev_queries": 3, "eval_steps": 1, "save_steps": 1, "lr_scheduler_type": "constant"}}
    }
    config = study_from_dict(tiny_study(tiny_beir, tiny_model_dir, objectives=["lsepair"], conditions=conditions))
    output = tmp_path / "study"
    evaluated = run_study(config, output, progress=False)
    write_report(config, evaluated, output, plot=False)
    manifest = json.loads((run_directory(output, "dev", "lsepair", 1) / "model" / "mpretriever.json").read_text())
    dev = manifest["dev_evaluation"]
    assert [point["step"] for point in dev["curve"]] == [0, 1, 2]
    assert manifest["hyperparameters"]["lr_scheduler_type"] == "constant"
    report = (output / "report.md").read_text()
    kept, start = dev["kept"]["nDCG@10"], dev["start"]["nDCG@10"]
    against_start = f"{kept - start:+.4f} over" if dev["beats_start"] else "**not above**"
    line = f"- lsepair, seed 1: step {dev['kept_step']} of 2 kept, dev nDCG@10 {kept:.4f}, {against_start}"
    assert f"{line} the starting model's {start:.4f} (" in report


def write_dev_manifest(output: Path, objective: str, dev: dict[str, object]) -> EvaluatedModel:
    manifest = run_directory(output, "dev", objective, 42) / "model" / "mpretriever.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"dev_evaluation": dev}))
    return EvaluatedModel("dev", objective, 42, means={}, per_query_path=output / "unused.json")


def test_dev_selection_lines_give_the_kept_steps_difference_and_its_test_against_the_start(tmp_path: Path) -> None:
    dev_set = {"queries": 30, "corpus": "full", "passages": 1398}
    start = {"nDCG@10": 0.43027}
    curve = [{"step": 0}, {"step": 7}, {"step": 32}]
    barely = write_dev_manifest(
        tmp_path,
        "infonce",
        {
            "dev_set": dev_set,
            "metric_for_best": "nDCG@10",
            "start": start,
            "kept_step": 7,
            "kept": {"nDCG@10": 0.43032},
            "beats_start": True,
            "curve": curve,
            "against_start": {"step": 7, "test": "t-test", "queries": 30, "difference": 5e-5, "p_value": 0.998},
        },
    )
    clear = write_dev_manifest(
        tmp_path,
        "lsepair",
        {
            "dev_set": dev_set,
            "metric_for_best": "nDCG@10",
            "start": start,
            "kept_step": 32,
            "kept": {"nDCG@10": 0.474},
            "beats_start": True,
            "curve": curve,
            "against_start": {"step": 32, "test": "t-test", "queries": 30, "difference": 0.0437, "p_value": 0.012},
        },
    )
    start_kept = write_dev_manifest(
        tmp_path,
        "jointlh",
        {
            "dev_set": dev_set,
            "metric_for_best": "nDCG@10",
            "start": start,
            "kept_step": 0,
            "kept": start,
            "beats_start": False,
            "curve": curve,
            "against_start": {"step": 7, "test": "t-test", "queries": 30, "difference": -0.01, "p_value": 0.3},
        },
    )

    lines = dev_selection_lines([barely, clear, start_kept], tmp_path, "dev")

    assert lines[2:5] == [
        "- infonce, seed 42: step 7 of 32 kept, dev nDCG@10 0.4303, +0.0000 over the starting model's 0.4303 "
        "(p 1, not significant, paired t-test over 30 dev queries; full corpus of 1398 passages)",
        "- lsepair, seed 42: step 32 of 32 kept, dev nDCG@10 0.4740, +0.0437 over the starting model's 0.4303 "
        "(p 0.012, significant, paired t-test over 30 dev queries; full corpus of 1398 passages)",
        "- jointlh, seed 42: step 0 of 32 kept, dev nDCG@10 0.4303, **not above** the starting model's 0.4303 "
        "(+0.0000; 30 dev queries; full corpus of 1398 passages)",
    ]


def test_a_record_without_an_option_added_later_matches_at_its_default() -> None:
    from mpretriever.study.runner import differences

    recorded = {"train": {"loss": "lsepair", "min_grade": 3}, "noise": None, "eval_split": "test"}
    asked = {"train": {"loss": "lsepair", "min_grade": 3, "queries_from": None}, "noise": None, "eval_split": "test"}
    assert differences(recorded, asked) is None
    assert differences(recorded, {**asked, "train": {**asked["train"], "queries_from": "labels.tsv"}}) == [
        "queries_from"
    ]
    assert differences(recorded, {**asked, "eval_split": "dev"}) == []
    assert differences(recorded, {**asked, "train": {**asked["train"], "min_grade": 1}}) == ["min_grade"]


def test_the_llm_label_regimes_train_on_the_labels_they_name(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The conditions of eval/llm-labels-nfcorpus.yml on the tiny dataset: human grade 3 alone, the LLM's grade 1
    alone, or both pooled, each on its own scale, all on the annotated queries."""
    from mpretriever.data import BeirDataset
    from mpretriever.study.runner import _train_config
    from mpretriever.training.run import load_training_examples
    from tests.conftest import write_qrels

    dataset = BeirDataset(tiny_beir)
    annotated = sorted(dataset.qrels("train-graded"))[:6]
    unjudged = [doc_id for doc_id in dataset.doc_index if not doc_id.startswith("d0")][:1]
    llm = write_qrels(tmp_path / "llm.tsv", [(query_id, unjudged[0], 1) for query_id in annotated])
    shipped = load_study(Path(__file__).resolve().parents[2] / "eval" / "llm-labels-nfcorpus.yml")
    train = {**TINY_TRAIN, "split": "train-graded", "queries_from": str(llm), "extra_qrels": [f"{llm}=llm"]}
    conditions = {condition.name: {"train": condition.train} for condition in shipped.conditions}
    config = study_from_dict(tiny_study(tiny_beir, tiny_model_dir, train=train, conditions=conditions))
    positives = {}
    for condition in config.conditions:
        train_config = _train_config(config, condition, "lsepair", 1, dataset, None, None, tmp_path / "m", False)
        examples = load_training_examples(train_config, dataset)
        assert {example.query_id for example in examples} <= set(annotated)
        positives[condition.name] = {(p.source, p.grade) for example in examples for p in example.positives}
    assert positives["human"] == {("human", 3)}
    assert positives["llm-only"] == {("llm", 1)}
    assert positives["human+llm"] == {("human", 3), ("llm", 1)}
