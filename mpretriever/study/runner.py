"""Running a study: prepare each condition's labels, train every objective x seed, evaluate everything.

Layout under the study's output directory::

    base/eval/                                   the base model's evaluation (run file, per-query values)
    conditions/<condition>/qrels.tsv             noisy training labels (conditions with noise)
    conditions/<condition>/bm25-candidates.jsonl ranked unjudged passages for hard noise (from mpr mine's BM25)
    conditions/<condition>/bm25-negatives.jsonl  hard negatives for conditions with ``negatives``
    runs/<condition>/<objective>/seed-<seed>/    study-run.json (what was asked), model/, eval/
    results.json, report.md, study.png           written by :mod:`mpretriever.study.report`

The study resumes: a run whose model and evaluation are complete is not redone, a training run interrupted after
a checkpoint continues from it, and a run directory asked for with different options is refused (nothing is
silently overwritten: choose another output directory).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from mpretriever.data.beir import BeirDataset
from mpretriever.data.examples import LabelFilter
from mpretriever.data.negatives import load_negatives
from mpretriever.data.noise import NOISE_SOURCE, inject_label_noise, write_qrels
from mpretriever.data.resolve import resolve_dataset
from mpretriever.evaluation.metrics import parse_measures
from mpretriever.evaluation.retrieval import METRICS_FILE, EvalConfig, evaluate_retrieval, per_query_file
from mpretriever.evaluation.significance import load_per_query
from mpretriever.files import OutputExistsError
from mpretriever.mining.run import MineConfig, mine
from mpretriever.mining.selection import SelectionConfig
from mpretriever.model.manifest import MANIFEST_NAME
from mpretriever.study.config import Condition, StudyConfig
from mpretriever.training.checkpoints import last_complete_checkpoint
from mpretriever.training.options import added_since
from mpretriever.training.run import TrainConfig, own_option_defaults, train

logger = logging.getLogger(__name__)

RUN_RECORD = "study-run.json"
SEARCH_MODE = "exact"
HARD_CANDIDATE_DEPTH = 200


@dataclass
class EvaluatedModel:
    """One evaluated model of the study: the base model (``objective`` is ``"base"``) or a trained one."""

    condition: str | None
    objective: str
    seed: int | None
    means: dict[str, float]
    per_query_path: Path
    train_s: float | None = None
    eval_s: float | None = None

    def per_query(self) -> dict[str, dict[str, float]]:
        return load_per_query(self.per_query_path)

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "per_query_path": str(self.per_query_path.relative_to(root)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path) -> EvaluatedModel:
        return cls(**{**data, "per_query_path": root / data["per_query_path"]})


def run_directory(output: Path, condition: str, objective: str, seed: int) -> Path:
    return output / "runs" / condition / objective / f"seed-{seed}"


def finished_evaluation(
    config: StudyConfig, directory: Path, passage_max_length: int | None = None
) -> tuple[dict[str, float], Path, float] | None:
    """The means, per-query file and seconds of a complete evaluation in ``directory`` (``None`` if there is
    none); an evaluation made with other settings than the study's is refused."""
    metrics, per_query = directory / METRICS_FILE, directory / per_query_file(SEARCH_MODE)
    if not (metrics.is_file() and per_query.is_file()):
        return None
    summary = json.loads(metrics.read_text(encoding="utf-8"))
    labels = [measure.label for measure in parse_measures(config.measures)]
    if (
        summary["split"] != config.eval_split
        or (passage_max_length is not None and summary["passage_max_length"] != passage_max_length)
        or list(summary["metrics"][SEARCH_MODE]) != labels
    ):
        raise OutputExistsError(
            f"{directory} holds an evaluation of split {summary['split']!r}, passages of "
            f"{summary['passage_max_length']} tokens and measures {list(summary['metrics'][SEARCH_MODE])}, not "
            f"the study's; choose another study output directory"
        )
    return summary["metrics"][SEARCH_MODE], per_query, summary["wall_time_s"]


def _evaluation(
    config: StudyConfig,
    dataset: BeirDataset,
    model: str | None,
    directory: Path,
    progress: bool,
    passage_max_length: int | None = None,
) -> tuple[dict[str, float], Path, float]:
    """Evaluate ``model`` into ``directory`` unless a complete evaluation is already there."""
    finished = finished_evaluation(config, directory, passage_max_length)
    if finished is not None:
        return finished
    report = evaluate_retrieval(
        EvalConfig(
            data=str(dataset.root),
            split=config.eval_split,
            model=model,
            measures=config.measures,
            passage_max_length=passage_max_length,
            output=directory,
            overwrite=True,  # only the study writes here, and a complete evaluation was not found above
            progress=progress,
        )
    )
    return report.result(SEARCH_MODE).means, directory / per_query_file(SEARCH_MODE), report.wall_time_s


def base_passage_max_length(config: StudyConfig) -> int | None:
    """The base model reads passages as far as the trained ones do, so the comparison is of the weights alone."""
    return config.train.get("passage_max_length", TrainConfig.passage_max_length)


def _hard_candidates(
    config: StudyConfig, dataset: BeirDataset, split: str, directory: Path, progress: bool
) -> dict[str, list[str]]:
    """Unjudged passages in BM25 rank order per query, mined once per condition directory."""
    path = directory / "bm25-candidates.jsonl"
    selection = SelectionConfig(depth=HARD_CANDIDATE_DEPTH, max_negatives=HARD_CANDIDATE_DEPTH)
    _mine_once(dataset, split, selection, path, progress)
    return load_negatives(path, dataset.queries, dataset.doc_index)


def hard_negatives(
    config: StudyConfig, condition: Condition, dataset: BeirDataset, directory: Path, progress: bool
) -> Path | None:
    """The BM25 hard-negative file a condition trains with (mined once), or ``None`` without ``negatives``."""
    if condition.negatives is None:
        return None
    path = directory / "bm25-negatives.jsonl"
    split = {**config.train, **condition.train}.get("split", "train")
    _mine_once(dataset, split, SelectionConfig(**condition.negatives), path, progress)
    return path


def _mine_once(dataset: BeirDataset, split: str, selection: SelectionConfig, path: Path, progress: bool) -> None:
    """BM25-rank the split's queries into ``path`` (``mpr mine``), unless an earlier run of the study did."""
    if not path.is_file():
        mine(
            MineConfig(
                data=str(dataset.root), output=path, split=split, method="bm25", selection=selection, progress=progress
            )
        )


def training_labels(
    config: StudyConfig, condition: Condition, dataset: BeirDataset, directory: Path, progress: bool
) -> Path | None:
    """The qrels file a condition trains on: ``None`` for the dataset's own split, or the noisy copy."""
    if condition.noise is None:
        return None
    path = directory / "qrels.tsv"
    if path.is_file():
        return path
    options = {**config.train, **condition.train}
    split = options.get("split", "train")
    label_filter = LabelFilter.from_options(
        options.get("min_grade", TrainConfig.min_grade),
        options.get("sources"),
        options.get("label_conflict", TrainConfig.label_conflict),
        options.get("source_min_grade"),
    )
    candidates = (
        _hard_candidates(config, dataset, split, directory, progress) if condition.noise.kind == "hard" else None
    )
    noisy = inject_label_noise(
        dataset.qrels(split),
        condition.noise.share,
        list(dataset.doc_index),
        kind=condition.noise.kind,
        hard_candidates=candidates,
        seed=condition.noise.seed,
        label_filter=label_filter,
    )
    replaced = sum(j.source == NOISE_SOURCE for judgements in noisy.values() for j in judgements.values())
    logger.info(
        "%s: %d of the positives replaced by %s false positives", condition.name, replaced, condition.noise.kind
    )
    write_qrels(path, noisy)
    return path


def _train_config(
    config: StudyConfig,
    condition: Condition,
    objective: str,
    seed: int,
    dataset: BeirDataset,
    qrels_file: Path | None,
    negatives: Path | None,
    model_dir: Path,
    progress: bool,
) -> TrainConfig:
    options = {**config.train, **condition.train}
    if qrels_file is not None and options.get("sources"):
        options["sources"] = [*options["sources"], NOISE_SOURCE]  # the false positives count as the true ones did
    return TrainConfig.from_options(
        data=str(dataset.root),
        output=model_dir,
        loss=objective,
        model=config.model,
        seed=seed,
        qrels_file=qrels_file,
        negatives=negatives,
        progress=progress,
        **options,
    )


def _record(train_config: TrainConfig, config: StudyConfig, condition: Condition) -> dict[str, Any]:
    record: dict[str, Any] = {
        "train": train_config.options(),
        "noise": dataclasses.asdict(condition.noise) if condition.noise else None,
        "eval_split": config.eval_split,
    }
    if condition.negatives is not None:
        record["negatives"] = condition.negatives
    return json.loads(json.dumps(record, default=str))


def differences(earlier: dict[str, Any], record: dict[str, Any]) -> list[str] | None:
    """The training options in which a recorded run differs from the one asked for (``[]`` when only the noise,
    negatives or evaluation split differ; ``None`` when nothing does).

    An option added to mpretriever after the run was recorded is absent from its record; asked for at its
    default, it matches (a new option's default keeps the behaviour of the versions before it)."""
    defaults = own_option_defaults()
    changed = sorted(
        key
        for key in set(earlier["train"]) | set(record["train"])
        if earlier["train"].get(key) != record["train"].get(key)
        and not added_since(key, key in earlier["train"], record["train"].get(key), defaults)
    )
    rest = [key for key in set(earlier) | set(record) if key != "train" and earlier.get(key) != record.get(key)]
    return changed if changed or rest else None


def train_once(train_config: TrainConfig, record: dict[str, Any], directory: Path, console: Console) -> float:
    """Train unless the run directory already holds this run's model; returns the run's training seconds."""
    record_path, model_dir = directory / RUN_RECORD, train_config.output
    if record_path.is_file():
        earlier = json.loads(record_path.read_text(encoding="utf-8"))
        changed = differences(earlier, record)
        if changed is not None:
            raise OutputExistsError(
                f"{directory} holds a run with other options "
                f"(differs in: {', '.join(changed) or 'noise / eval split'}); "
                "choose another study output directory"
            )
        if (model_dir / MANIFEST_NAME).is_file():
            return _train_runtime(model_dir)
    elif model_dir.is_dir() and any(model_dir.iterdir()):
        raise OutputExistsError(f"{model_dir} holds a model the study did not train; choose another output directory")
    directory.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    resumable = model_dir.is_dir() and last_complete_checkpoint(model_dir) is not None
    train(dataclasses.replace(train_config, resume=resumable, overwrite=not resumable), console=console)
    return _train_runtime(model_dir)


def _train_runtime(model_dir: Path) -> float:
    return float(json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8")).get("train_runtime_s", 0.0))


def run_study(
    config: StudyConfig, output: Path, console: Console | None = None, progress: bool = True
) -> list[EvaluatedModel]:
    """Train and evaluate everything the study asks for (resuming what is done) and return the evaluations."""
    console = console or Console(stderr=True)
    dataset = BeirDataset(resolve_dataset(config.data))
    total = len(config.conditions) * len(config.objectives) * len(config.seeds)
    console.rule(f"study {config.name}: base model on {dataset.name} '{config.eval_split}'")
    means, per_query, eval_s = _evaluation(
        config, dataset, config.model, output / "base" / "eval", progress, base_passage_max_length(config)
    )
    evaluated = [EvaluatedModel(None, "base", None, means, per_query, eval_s=eval_s)]
    done = 0
    for condition in config.conditions:
        condition_dir = output / "conditions" / condition.name
        qrels_file = training_labels(config, condition, dataset, condition_dir, progress)
        negatives = hard_negatives(config, condition, dataset, condition_dir, progress)
        for seed in config.seeds:
            for objective in config.objectives:
                done += 1
                console.rule(f"[{done}/{total}] {condition.name} / {objective} / seed {seed}")
                directory = run_directory(output, condition.name, objective, seed)
                train_config = _train_config(
                    config, condition, objective, seed, dataset, qrels_file, negatives, directory / "model", progress
                )
                train_s = train_once(train_config, _record(train_config, config, condition), directory, console)
                model = str(directory / "model")
                passages = base_passage_max_length(config)  # the base's length, not the model's maximum
                means, per_query, eval_s = _evaluation(config, dataset, model, directory / "eval", progress, passages)
                evaluated.append(EvaluatedModel(condition.name, objective, seed, means, per_query, train_s, eval_s))
                console.print(
                    f"{condition.name} / {objective} / seed {seed}: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
                )
    return evaluated


def collect_study(config: StudyConfig, output: Path) -> list[EvaluatedModel]:
    """Every finished run of the study in ``output`` (any seed found on disk), without training or evaluating.

    For a report on a study that is still running or was run in parts. A run directory holding a run with other
    options than the study's is refused, as :func:`run_study` refuses it.
    """
    base = finished_evaluation(config, output / "base" / "eval", base_passage_max_length(config))
    if base is None:
        raise FileNotFoundError(f"{output}: the base model has not been evaluated yet; run the study first")
    evaluated = [EvaluatedModel(None, "base", None, base[0], base[1], eval_s=base[2])]
    dataset = BeirDataset(resolve_dataset(config.data))
    for condition in config.conditions:
        condition_dir = output / "conditions" / condition.name
        qrels_file = condition_dir / "qrels.tsv" if condition.noise else None
        negatives = condition_dir / "bm25-negatives.jsonl" if condition.negatives else None
        for objective in config.objectives:
            seeds = sorted(
                int(path.name.removeprefix("seed-"))
                for path in (output / "runs" / condition.name / objective).glob("seed-*")
                if path.name.removeprefix("seed-").isdigit()
            )
            for seed in seeds:
                directory = run_directory(output, condition.name, objective, seed)
                model_dir = directory / "model"
                finished = finished_evaluation(config, directory / "eval")
                if finished is None or not (model_dir / MANIFEST_NAME).is_file():
                    continue
                train_config = _train_config(
                    config, condition, objective, seed, dataset, qrels_file, negatives, model_dir, False
                )
                earlier = json.loads((directory / RUN_RECORD).read_text(encoding="utf-8"))
                if differences(earlier, _record(train_config, config, condition)) is not None:
                    raise OutputExistsError(f"{directory} holds a run with other options than the study's")
                means, per_query, eval_s = finished
                evaluated.append(
                    EvaluatedModel(condition.name, objective, seed, means, per_query, _train_runtime(model_dir), eval_s)
                )
    return evaluated
