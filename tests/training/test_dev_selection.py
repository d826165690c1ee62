"""Training with a dev set: evaluated at the start and every eval_steps, the best checkpoint is the saved model
(the Trainer's load_best_model_at_end), the dev curve is kept, and a run where no step beats the starting model
says so. Also the dev set itself: held-out queries by a stable hash, full corpus or a BM25 pool."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from mpretriever.data import BeirDataset
from mpretriever.evaluation import EvalConfig, evaluate_retrieval
from mpretriever.model import BiEncoder
from mpretriever.training import TrainConfig, train
from mpretriever.training.dev_curve import DEV_CURVE_PLOT, DevCurve, DevPoint
from mpretriever.training.dev_set import DevEvaluator, build_dev_set, held_out_queries
from mpretriever.training.run import load_dev_set, load_training_examples
from tests.cli.test_cli import _tiny_args, run_cli
from tests.training.test_training import _config, _StopAt


def _dev_config(tiny_beir: Path, tiny_model_dir: Path, output: Path, **changes: Any) -> TrainConfig:
    options = {"dev_queries": 4, "num_train_epochs": 10, "eval_steps": 5, "save_steps": 5, **changes}
    return _config(tiny_beir, tiny_model_dir, output, **options)


@pytest.fixture(scope="module")
def dev_run(tiny_beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("dev-run") / "run"
    outcome = train(_dev_config(tiny_beir, tiny_model_dir, output))
    return outcome, json.loads((output / "mpretriever.json").read_text(encoding="utf-8"))


def test_held_out_queries_depend_on_the_ids_alone() -> None:
    ids = [f"q{i}" for i in range(50)]
    chosen = held_out_queries(ids, 5)
    assert len(chosen) == 5 and set(chosen) <= set(ids)
    assert held_out_queries(reversed(ids), 5) == chosen  # not on the order
    assert set(chosen) <= set(held_out_queries(ids, 10))  # holding out more keeps the first ones held out
    assert held_out_queries(ids, 50) == sorted(ids)
    assert held_out_queries(ids, 5) != held_out_queries([f"x{i}" for i in range(50)], 5)
    with pytest.raises(ValueError, match="at least 1"):
        held_out_queries(ids, 0)


def test_the_run_evaluates_at_the_start_and_every_eval_steps_and_keeps_the_best(dev_run, tmp_path: Path) -> None:
    outcome, manifest = dev_run
    dev = manifest["dev_evaluation"]
    steps = [point["step"] for point in dev["curve"]]
    assert steps == [0, 5, 10, 15, 20] and outcome.steps == 20
    assert dev["dev_set"]["queries"] == 4 and dev["dev_set"]["corpus"] == "full"
    assert dev["dev_set"]["queries_from"] == "train, held out of training"
    scores = {point["step"]: point["nDCG@10"] for point in dev["curve"]}
    best_step = max((step for step in steps if step > 0), key=lambda step: (scores[step], -step))
    assert dev["kept_step"] == best_step and dev["kept"]["nDCG@10"] == scores[best_step]
    assert dev["start"]["nDCG@10"] == scores[0]
    assert dev["beats_start"] == (scores[best_step] > scores[0])
    # the saved model is the best checkpoint's weights, not the last step's
    saved = load_file(outcome.output / "model.safetensors")
    best = load_file(outcome.output / f"checkpoint-{best_step}" / "model.safetensors")
    assert all(torch.equal(saved[name], best[name]) for name in best)
    if best_step != 20:
        last = load_file(outcome.output / "checkpoint-20" / "model.safetensors")
        assert not all(torch.equal(saved[name], last[name]) for name in last)
    assert (outcome.output / DEV_CURVE_PLOT).stat().st_size > 1000
    assert manifest["hyperparameters"]["dev_queries"] == 4
    assert manifest["hyperparameters"]["load_best_model_at_end"] is True
    # the saved step against the start, query by query, on the same 4 dev queries
    test = dev["against_start"]
    assert test["step"] == best_step and test["queries"] == 4 and test["test"] == "t-test"
    assert test["difference"] == pytest.approx(scores[best_step] - scores[0], abs=1e-9)
    assert 0.0 <= test["p_value"] <= 1.0
    assert f"paired t-test over 4 dev queries: p {test['p_value']:.2g}" in " ".join(outcome.dev_curve.verdict())


def test_each_dev_evaluation_leaves_its_per_query_values_in_the_run(dev_run) -> None:
    """``dev-per-query/step-N.json`` holds every evaluation's values by query, whose means are the curve's."""
    outcome, manifest = dev_run
    dev = manifest["dev_evaluation"]
    assert dev["per_query"] == "dev-per-query/step-<step>.json"
    for point in dev["curve"]:
        values = json.loads((outcome.output / "dev-per-query" / f"step-{point['step']}.json").read_text("utf-8"))
        assert len(values) == 4
        mean = sum(query["nDCG@10"] for query in values.values()) / len(values)
        assert mean == pytest.approx(point["nDCG@10"], abs=1e-9)


def test_a_resumed_run_still_tests_its_saved_step_against_the_start(
    tiny_beir: Path, tiny_model_dir: Path, dev_run, tmp_path: Path
) -> None:
    """The start was evaluated by the interrupted process: its recorded per-query values give the resumed run the
    same paired test as the uninterrupted one; a record beyond the resumed checkpoint, which the resumed run does
    not reach, is not left behind to describe weights that no longer exist."""
    _, uninterrupted = dev_run
    config = _dev_config(tiny_beir, tiny_model_dir, tmp_path / "run")
    train(config, callbacks=[_StopAt(10)])
    stale = config.output / "dev-per-query" / "step-25.json"
    stale.write_text("{}", encoding="utf-8")
    outcome = train(replace(config, resume=True))
    dev = outcome.manifest.dev_evaluation
    assert dev is not None and dev["against_start"] is not None
    expected = uninterrupted["dev_evaluation"]
    assert [point["step"] for point in dev["curve"]] == [0, 5, 10, 15, 20]
    assert dev["kept_step"] == expected["kept_step"]
    assert dev["against_start"]["step"] == expected["against_start"]["step"]
    assert dev["against_start"]["difference"] == pytest.approx(expected["against_start"]["difference"], abs=1e-6)
    assert dev["against_start"]["p_value"] == pytest.approx(expected["against_start"]["p_value"], rel=1e-4)
    assert not stale.exists()
    assert sorted(path.name for path in (config.output / "dev-per-query").iterdir()) == [
        f"step-{step}.json" for step in (0, 10, 15, 20, 5)
    ]


def test_held_out_dev_queries_are_never_trained_on(tiny_beir: Path, tiny_model_dir: Path, dev_run) -> None:
    outcome, manifest = dev_run
    dataset = BeirDataset(tiny_beir)
    config = _dev_config(tiny_beir, tiny_model_dir, Path("unused"))
    held_out = held_out_queries(dataset.qrels("train"), 4)
    trained = {example.query_id for example in load_training_examples(config, dataset, held_out)}
    assert trained.isdisjoint(held_out) and len(trained) == 12 - 4
    assert outcome.examples == manifest["train_samples"] == 8


def test_the_dev_figure_of_the_starting_model_is_what_mpr_eval_reports(tiny_beir: Path, tiny_run: Path) -> None:
    dataset = BeirDataset(tiny_beir)
    qrels = {q: {d: j.grade for d, j in judged.items()} for q, judged in dataset.qrels("test").items()}
    dev_set = build_dev_set(dataset, qrels, "split test")
    encoder = BiEncoder.from_pretrained(tiny_run, query_max_length=16, passage_max_length=32)
    figures = DevEvaluator(dev_set, dataset.corpus)(encoder)
    report = evaluate_retrieval(EvalConfig(data=str(tiny_beir), split="test", model=str(tiny_run), progress=False))
    assert figures == pytest.approx(report.result("exact").means, abs=1e-6)
    assert encoder.transformer.document_length == 32  # the training lengths are back after evaluation
    assert encoder.max_length("passage") == 32 and encoder.config.passage_max_length == 32
    with encoder.inference_lengths():  # what a saved run is loaded with: queries up to the maximum
        assert encoder.max_length("query") == encoder.max_seq_length == 128  # what the truncation log reports
        assert encoder.max_length("passage") == 32


def test_the_starting_model_is_evaluated_as_it_is_served_and_trained_steps_as_the_run_will_be(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A run trained on 32-token passages is served at 32: its steps are evaluated so. The starting model, a
    model no run trained, is served up to its maximum (128): it is evaluated so, which is what it is compared with."""
    seen: dict[int, tuple[int, int]] = {}
    evaluate = DevEvaluator.__call__

    def recording(self, encoder, cache=None, step=None, passage_max_length=None):
        with encoder.inference_lengths(passage_max_length):
            seen[step] = (encoder.max_length("query"), encoder.max_length("passage"))
        return evaluate(self, encoder, cache=cache, step=step, passage_max_length=passage_max_length)

    monkeypatch.setattr(DevEvaluator, "__call__", recording)
    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    config = _dev_config(tiny_beir, tiny_model_dir, tmp_path / "run", num_train_epochs=5)
    outcome = train(config)
    assert seen == {0: (128, 128), 5: (128, 32), 10: (128, 32)}
    assert outcome.dev_curve is not None
    dataset = BeirDataset(tiny_beir)
    dev_set = load_dev_set(config, dataset)
    assert dev_set is not None
    base = BiEncoder.from_pretrained(tiny_model_dir)  # as it is served, up to 128 tokens
    expected = DevEvaluator(dev_set, dataset.corpus)(base)
    assert outcome.dev_curve.points[0].values == pytest.approx(expected, abs=1e-6)


def test_a_pool_holds_the_judged_passages_and_the_bm25_candidates(tiny_beir: Path) -> None:
    dataset = BeirDataset(tiny_beir)
    qrels = {"q0": {"d0-0": 1, "n3": 0}, "q1": {"d1-1": 2}}
    pool = build_dev_set(dataset, qrels, "split x", corpus="pool", pool_depth=3)
    ids = {dataset.corpus[row]["_id"] for row in pool.rows or ()}
    assert {"d0-0", "n3", "d1-1"} <= ids and len(ids) <= 3 + 2 * 3
    assert pool.describe()["corpus"] == "pool" and pool.describe()["pool_depth"] == 3
    assert "not comparable to full-corpus ones" in pool.headline()
    again = build_dev_set(dataset, qrels, "split x", corpus="pool", pool_depth=3)
    assert again.describe()["pool_fingerprint"] == pool.describe()["pool_fingerprint"]
    full = build_dev_set(dataset, qrels, "split x")  # auto: a small corpus is evaluated whole
    assert full.rows is None and full.passages == len(dataset.corpus)
    assert set(full.queries) == {"q0", "q1"}


def test_queries_without_a_relevant_passage_are_left_out_of_the_dev_set(tiny_beir: Path) -> None:
    dataset = BeirDataset(tiny_beir)
    dev_set = build_dev_set(dataset, {"q0": {"d0-0": 1}, "q1": {"d1-0": 0}}, "split x")
    assert list(dev_set.queries) == ["q0"]
    with pytest.raises(ValueError, match="no relevant passage"):
        build_dev_set(dataset, {"q1": {"d1-0": 0}}, "split x")


def _falling_dev_figures(monkeypatch) -> None:
    figures = iter([0.9, 0.5, 0.7, 0.6, 0.4])

    def falling(
        self: DevEvaluator,
        encoder: BiEncoder,
        cache: object = None,
        step: int | None = None,
        passage_max_length: int | None = None,
    ) -> dict[str, float]:
        value = next(figures)
        return {label: value for label in self.labels}

    monkeypatch.setattr(DevEvaluator, "__call__", falling)


def test_a_run_where_no_step_beats_the_start_saves_the_starting_model_and_says_so(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """The dev figures fall after the start: the best model evaluated is the starting one, so it is saved
    unchanged, and the run says plainly that training did not beat it, in the manifest and on the console."""
    _falling_dev_figures(monkeypatch)
    outcome = train(_dev_config(tiny_beir, tiny_model_dir, tmp_path / "run"))
    dev = outcome.manifest.dev_evaluation
    assert dev is not None and dev["beats_start"] is False
    assert dev["kept_step"] == 0 and dev["kept"] == dev["start"] and dev["start"]["nDCG@10"] == 0.9
    saved_model = BiEncoder.from_pretrained(outcome.output)
    saved = saved_model.state_dict()
    start = BiEncoder.from_pretrained(tiny_model_dir, query_max_length=32, passage_max_length=32).state_dict()
    assert all(torch.equal(saved[name], start[name]) for name in start)
    # ... and served as it was: passages up to the tiny model's 128 tokens, not the 32 the run trained with
    assert saved_model.config.passage_max_length == outcome.manifest.encoder.passage_max_length == 128
    trained = load_file(outcome.output / "checkpoint-10" / "model.safetensors")
    assert not all(torch.equal(saved[f"model.0.model.{name}"], trained[name]) for name in trained)
    verdict = " ".join(outcome.dev_curve.verdict()) if outcome.dev_curve else ""
    assert "no evaluated step beat the starting model on dev" in verdict
    assert "the best trained step, 10, reached 0.7000 against 0.9000 for the starting model" in verdict
    assert "The starting model was saved unchanged" in verdict


def test_without_best_model_loading_the_last_step_is_saved_even_below_the_start(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    _falling_dev_figures(monkeypatch)
    outcome = train(_dev_config(tiny_beir, tiny_model_dir, tmp_path / "run", load_best_model_at_end=False))
    dev = outcome.manifest.dev_evaluation
    assert dev is not None and dev["kept_step"] == 20 and dev["kept"]["nDCG@10"] == 0.4
    assert dev["beats_start"] is False
    verdict = " ".join(outcome.dev_curve.verdict()) if outcome.dev_curve else ""
    assert "0.4000 at step 20 (saved) against 0.9000 for the starting model" in verdict
    assert "The saved model is not better than the one you started from" in verdict


def test_dev_options_that_cannot_work_are_refused_before_training(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="pass only one of them"):
        _config(tiny_beir, tiny_model_dir, tmp_path / "a", eval_split="test", dev_queries=3)
    with pytest.raises(ValueError, match="is the split the run trains on"):
        train(_config(tiny_beir, tiny_model_dir, tmp_path / "b", eval_split="train"))
    with pytest.raises(ValueError, match="would hold out every one of the 12 training queries"):
        train(_dev_config(tiny_beir, tiny_model_dir, tmp_path / "c", dev_queries=12))
    with pytest.raises(ValueError, match="unknown measure"):
        _config(tiny_beir, tiny_model_dir, tmp_path / "d", eval_split="test", metric_for_best="ndcg@x")
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_mpr_train_with_an_eval_split_passes_trainer_fields_through(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    output = tmp_path / "run"
    extra = ["--eval-split", "test", "--eval-steps", "1", "--metric-for-best", "mrr@10"]
    extra += ["--lr-scheduler-type", "constant", "--warmup_steps=0", "--weight-decay", "0.01"]
    code, _, err = run_cli(_tiny_args(tiny_beir, tiny_model_dir, output, *extra), capsys, monkeypatch)
    assert code == 0, err
    manifest = json.loads((output / "mpretriever.json").read_text(encoding="utf-8"))
    hyperparameters = manifest["hyperparameters"]
    assert hyperparameters["lr_scheduler_type"] == "constant" and hyperparameters["weight_decay"] == 0.01
    assert hyperparameters["eval_split"] == "test" and hyperparameters["eval_steps"] == 1
    assert manifest["dev_evaluation"]["metric_for_best"] == "MRR@10"
    assert [point["step"] for point in manifest["dev_evaluation"]["curve"]] == [0, 1, 2]
    state = json.loads((output / "checkpoint-2" / "trainer_state.json").read_text(encoding="utf-8"))
    rates = [entry["learning_rate"] for entry in state["log_history"] if "learning_rate" in entry]
    assert rates and all(rate == rates[0] for rate in rates)  # the constant schedule reached the Trainer
    assert "dev set: " in " ".join(err.split())


def test_trainer_help_lists_every_training_argument(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["train", "--trainer-help"], capsys, monkeypatch)
    assert code == 0
    assert "--lr_scheduler_type" in out and "--gradient_checkpointing" in out and "--deepspeed" in out


def test_mpr_train_offers_every_option_of_train_config() -> None:
    """mpretriever's own options live in TrainConfig; the command declares each one (with its help) and nothing
    the Trainer already knows, which passes through by its Hugging Face name."""
    import typer.main

    from mpretriever.cli.app import app
    from mpretriever.training.options import trainer_fields
    from mpretriever.training.run import own_option_names

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    declared = {parameter.name for parameter in command.params} - {"trainer_help"}
    renamed = {"qrels": "qrels_file", "extra_qrels": "extra_qrels"}
    offered = {renamed.get(name, name) for name in declared}
    assert set(own_option_names()) - {"progress"} == offered
    assert offered.isdisjoint(trainer_fields())


def test_the_starting_models_corpus_embeddings_come_from_the_cache(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Step 0 evaluates weights seen before (the base model): their corpus embeddings are cached and read by the
    next run. Of the trained steps, only the saved model's are kept there; no temporary directory is left."""
    import logging

    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "embeddings"
    first = train(_dev_config(tiny_beir, tiny_model_dir, tmp_path / "first", num_train_epochs=2))
    assert first.dev_curve is not None and first.dev_curve.kept_step == 4  # evaluated at 0 and at the end, 4
    stored = sorted(cache.glob("*.npy"))
    fingerprints = {json.loads(path.with_suffix(".json").read_text())["model_fingerprint"] for path in stored}
    saved, base = BiEncoder.from_pretrained(tmp_path / "first"), BiEncoder.from_pretrained(tiny_model_dir)
    assert fingerprints == {base.fingerprint(), saved.fingerprint()} and len(stored) == 2
    assert not list(cache.glob(".trained-steps-*"))
    with caplog.at_level(logging.INFO, logger="mpretriever.search.embeddings"):
        second = train(_dev_config(tiny_beir, tiny_model_dir, tmp_path / "second", num_train_epochs=2))
    assert sum("read from the cache" in record.getMessage() for record in caplog.records) == 1
    assert sorted(cache.glob("*.npy")) == stored
    assert second.dev_curve is not None and first.dev_curve.points == second.dev_curve.points


def test_an_index_of_the_saved_model_reads_the_embeddings_its_dev_evaluation_stored(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """The kept step's dev corpus embeddings stay in the cache (the other trained steps' do not), so indexing the
    saved model on the same corpus reads them; they are the vectors encoding gives."""
    from mpretriever.index import QdrantSettings, index_dataset
    from mpretriever.search.embeddings import EmbeddingCache

    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    outcome = train(_dev_config(tiny_beir, tiny_model_dir, run))
    assert outcome.dev_curve is not None and [point.step for point in outcome.dev_curve.points] == [0, 5, 10, 15, 20]
    assert outcome.dev_curve.kept_step > 0
    cache = tmp_path / "cache" / "embeddings"
    encoder = BiEncoder.from_pretrained(run)
    fingerprints = {json.loads(path.read_text())["model_fingerprint"] for path in cache.glob("*.json")}
    assert len(fingerprints) == 2 and encoder.fingerprint() in fingerprints  # the start and the kept step
    assert not list(cache.glob(".trained-steps-*"))

    corpus = BeirDataset(tiny_beir).corpus
    settings = QdrantSettings(path=str(tmp_path / "qdrant"))
    indexed = {
        name: index_dataset(encoder, corpus, "tiny", settings, name, str(run), cache=cache_, show_progress=False)
        for name, cache_ in (("cached", EmbeddingCache()), ("encoded", None))
    }
    assert indexed["cached"].stats.from_cache and not indexed["encoded"].stats.from_cache
    assert "read from the embedding cache" in indexed["cached"].summary()
    client = settings.connect()
    try:
        vectors = {
            name: {
                record.id: torch.tensor(record.vector)
                for record in client.scroll(name, limit=1000, with_vectors=True)[0]
            }
            for name in indexed
        }
    finally:
        client.close()
    assert len(vectors["cached"]) == len(corpus) and vectors["cached"].keys() == vectors["encoded"].keys()
    for point, vector in vectors["cached"].items():
        torch.testing.assert_close(vector, vectors["encoded"][point], atol=1e-5, rtol=1e-4)


def test_only_the_best_trained_steps_embeddings_are_kept_aside(tmp_path: Path) -> None:
    """The temporary directory holds one step's embeddings at a time: the best so far (strictly better replaces,
    as the Trainer's best checkpoint), or with ``latest`` the last; it goes with close()."""
    from mpretriever.search.embeddings import EmbeddingCache
    from mpretriever.training.dev_set import TrainedStepEmbeddings

    steps = TrainedStepEmbeddings(EmbeddingCache(tmp_path / "cache"))

    def evaluated(key: str, value: float, **options: bool) -> set[str]:
        steps.steps.save(key, torch.zeros(2, 3), {"step": key})
        steps.record(value, **options)
        return {path.stem for path in steps.steps.directory.glob("*.npy")}

    assert evaluated("a", 0.30) == {"a"}
    assert evaluated("b", 0.32) == {"b"}
    assert evaluated("c", 0.32) == {"b"}  # equal is not better: the first of equals stays
    assert evaluated("d", 0.31) == {"b"}
    assert evaluated("e", 0.20, greater_is_better=False) == {"e"}  # a measure where lower is better
    assert evaluated("f", 0.10, latest=True) == {"f"}
    assert len(list(steps.steps.directory.glob("*.json"))) == 1  # descriptions go with their matrices
    directory = steps.steps.directory
    steps.close()
    assert not directory.exists() and (tmp_path / "cache").is_dir()


def test_mpr_train_defaults_are_train_configs() -> None:
    """The command's defaults are the library's (the measured recipe), so mpr train and train() run the same."""
    import typer.main

    from mpretriever.cli.app import app
    from mpretriever.training.run import own_option_defaults

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    defaults = own_option_defaults()
    renamed = {"qrels": "qrels_file"}
    for parameter in command.params:
        name = renamed.get(parameter.name, parameter.name)
        if name not in defaults:
            continue
        default = getattr(parameter.default, "value", parameter.default)
        if isinstance(default, (list, tuple)) and not default:
            default = defaults[name] if defaults[name] in ([], {}, None) else list(default)
        assert str(default) == str(defaults[name]), f"--{parameter.name.replace('_', '-')}: {default!r}"


def _curve(kept_step: int, figures: tuple[float, float, float] = (0.30, 0.32, 0.31)) -> DevCurve:
    points = tuple(
        DevPoint(step, step / 10, {"nDCG@10": value}) for step, value in zip((0, 10, 20), figures, strict=True)
    )
    return DevCurve(
        {"queries": 40}, "40 queries of x split dev, full corpus (9 passages)", "nDCG@10", points, kept_step
    )


def _per_query(values: list[float]) -> dict[str, dict[str, float]]:
    return {f"q{i}": {"nDCG@10": value} for i, value in enumerate(values)}


def test_the_verdict_says_whether_the_dev_set_can_tell_the_saved_step_from_the_start() -> None:
    start = [0.2, 0.4] * 20
    clear = {0: _per_query(start), 10: _per_query([v + 0.05 + 0.001 * (i % 3) for i, v in enumerate(start)])}
    curve = _curve(10).compared_with_start(clear)
    assert curve.compared_step == 10 and curve.against_start is not None
    assert curve.against_start.queries == 40 and curve.against_start.p_value < 1e-6
    verdict = " ".join(curve.verdict())
    assert "paired t-test over 40 dev queries: p " in verdict and "not significant" not in verdict
    assert curve.to_dict()["against_start"]["step"] == 10

    noisy = {0: _per_query(start), 10: _per_query([v + (0.3 if i % 2 else -0.29) for i, v in enumerate(start)])}
    verdict = " ".join(_curve(10).compared_with_start(noisy).verdict())
    assert "not significant: the difference may be the dev set's noise" in verdict


def test_when_the_start_is_saved_the_best_trained_step_is_compared_with_it() -> None:
    start = [0.5] * 10
    per_query = {0: _per_query(start), 10: _per_query([0.4] * 9 + [0.45]), 20: _per_query([0.1] * 10)}
    curve = _curve(0, (0.5, 0.405, 0.1)).compared_with_start(per_query)
    assert curve.compared_step == 10 and curve.against_start is not None
    assert curve.against_start.difference == pytest.approx(-0.095)
    verdict = " ".join(curve.verdict())
    assert "reached 0.4050 against 0.5000 for the starting model (paired t-test over 10 dev queries: p " in verdict


def test_without_the_starts_per_query_values_there_is_no_test() -> None:
    """The start's per-query values are missing (a resumed run whose records were deleted): nothing to compare,
    and the verdict says nothing it cannot back."""
    curve = _curve(10).compared_with_start({10: _per_query([0.3, 0.4])})
    assert curve.against_start is None and curve.compared_step is None
    assert curve.to_dict()["against_start"] is None
    assert "paired t-test" not in " ".join(curve.verdict())
