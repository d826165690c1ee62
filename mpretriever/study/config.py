"""What an objective-comparison study runs, read from a YAML file (see ``eval/*.yml``).

A study trains every objective of ``objectives`` under every condition of ``conditions`` for every seed of
``seeds``, from the same base model with the same shared training options (``train``), and evaluates each model
and the base model on ``eval_split``. A condition changes the training labels: its own ``train`` options (e.g.
``min_grade: 3`` for the strong-positives regime), optionally ``noise`` (a share of each query's positives
replaced by random or hard false positives, :mod:`mpretriever.data.noise`) and optionally ``negatives``: hard
negatives mined with BM25 for the training queries (the options of
:class:`~mpretriever.mining.selection.SelectionConfig`, e.g. ``{skip_top: 10, depth: 100}``)::

    name: nfcorpus
    data: nfcorpus
    objectives: [infonce, rand1lh, jointlh, summarglh, lsepair]
    seeds: [42]
    train: {split: train-graded, num_train_epochs: 2, per_device_train_batch_size: 16, learning_rate: 1.0e-4}
    conditions:
      grade-3: {train: {min_grade: 3}}
      grade-3-hard-50: {train: {min_grade: 3}, noise: {share: 0.5, kind: hard}}
      grade-3-bm25-negatives: {train: {min_grade: 3}, negatives: {skip_top: 10, depth: 100}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpretriever.data.errors import DataFormatError
from mpretriever.data.noise import NoiseKind
from mpretriever.evaluation.metrics import DEFAULT_MEASURES, parse_measures
from mpretriever.files import read_yaml
from mpretriever.mining.selection import SelectionConfig
from mpretriever.training.objectives import OBJECTIVES
from mpretriever.training.options import split_options
from mpretriever.training.run import own_option_names

# Set by the study for each run; a study file may not set them in ``train``. Every other option of mpr train
# (TrainConfig's fields and every Hugging Face TrainingArguments field, by its own name) may be set.
RUN_FIELDS = frozenset(
    {
        "data",
        "output",
        "loss",
        "model",
        "seed",
        "qrels_file",
        "negatives",
        "resume",
        "resume_from",
        "overwrite",
        "progress",
        "trainer",
    }
)
REFERENCE_OBJECTIVE = "infonce"


@dataclass(frozen=True)
class NoiseSpec:
    """Replace ``share`` of each query's positives with ``kind`` false positives (``seed``: which ones)."""

    share: float
    kind: NoiseKind = "random"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"noise share must be between 0 and 1, got {self.share}")
        if self.kind not in ("random", "hard"):
            raise ValueError(f"noise kind must be 'random' or 'hard', got {self.kind!r}")


@dataclass(frozen=True)
class Condition:
    """A training-label regime: training options over the study's shared ones, optional label noise, and optional
    BM25 hard negatives (``negatives``: :class:`~mpretriever.mining.selection.SelectionConfig` options)."""

    name: str
    train: dict[str, Any] = field(default_factory=dict)
    noise: NoiseSpec | None = None
    negatives: dict[str, Any] | None = None


@dataclass
class StudyConfig:
    name: str
    data: str
    objectives: list[str]
    conditions: list[Condition]
    seeds: list[int] = field(default_factory=lambda: [42])
    model: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    eval_split: str = "test"
    measures: list[str] = field(default_factory=lambda: list(DEFAULT_MEASURES))
    source: Path | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.objectives if name.lower() not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; choose from {', '.join(OBJECTIVES)}")
        if not self.objectives or not self.conditions or not self.seeds:
            raise ValueError("a study needs at least one objective, one condition and one seed")
        names = [condition.name for condition in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {names}")
        for where, options in [("train", self.train)] + [
            (f"conditions.{c.name}.train", c.train) for c in self.conditions
        ]:
            controlled = sorted(set(options) & RUN_FIELDS)
            if controlled:
                raise ValueError(f"{where}: {controlled} are set by the study for each run (seeds, objectives, ...)")
            try:
                split_options(options, own_option_names())
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        parse_measures(self.measures)

    @property
    def primary_measure(self) -> str:
        return self.measures[0]

    def select(
        self, objectives: list[str] | None = None, conditions: list[str] | None = None, seeds: list[int] | None = None
    ) -> StudyConfig:
        """The same study restricted to some objectives or conditions (each must be in the study), or run with
        other ``seeds``."""
        for label, wanted, known in (
            ("objective", objectives, self.objectives),
            ("condition", conditions, [c.name for c in self.conditions]),
        ):
            missing = [value for value in wanted or [] if value not in known]
            if missing:
                raise ValueError(f"{label} {missing} is not in the study (it has {known})")
        return dataclasses.replace(
            self,
            objectives=[o for o in self.objectives if not objectives or o in objectives],
            conditions=[c for c in self.conditions if not conditions or c.name in conditions],
            seeds=list(seeds) if seeds else self.seeds,
        )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def study_from_dict(definition: dict[str, Any], source: Path | None = None) -> StudyConfig:
    """Build a :class:`StudyConfig` from the parsed YAML (see the module docstring for the layout)."""
    definition = dict(definition)
    conditions = []
    for name, body in _mapping(definition.pop("conditions", None), "conditions").items():
        body = _mapping(body, f"conditions.{name}")
        extra = sorted(set(body) - {"train", "noise", "negatives"})
        if extra:
            raise ValueError(f"conditions.{name}: unknown keys {extra} (allowed: train, noise, negatives)")
        negatives = body.get("negatives")
        if negatives is not None:
            SelectionConfig(**_mapping(negatives, f"conditions.{name}.negatives"))  # refuse bad options early
        noise = body.get("noise")
        conditions.append(
            Condition(
                name=str(name),
                train=_mapping(body.get("train"), f"conditions.{name}.train"),
                noise=NoiseSpec(**_mapping(noise, f"conditions.{name}.noise")) if noise is not None else None,
                negatives=negatives,
            )
        )
    known = {f.name for f in dataclasses.fields(StudyConfig)} - {"conditions", "source"}
    extra = sorted(set(definition) - known)
    if extra:
        raise ValueError(f"unknown keys {extra} (allowed: conditions, {', '.join(sorted(known))})")
    missing = sorted({"name", "data", "objectives"} - set(definition))
    if missing:
        raise ValueError(f"missing keys {missing}")
    definition["train"] = _mapping(definition.get("train"), "train")
    return StudyConfig(conditions=conditions, source=source, **definition)


def load_study(path: str | Path) -> StudyConfig:
    """Read a study YAML file; every problem is reported with the file (and line, for YAML syntax)."""
    path = Path(path)
    definition = read_yaml(path)
    if not isinstance(definition, dict):
        raise DataFormatError(path, "a study file is a mapping (name, data, objectives, conditions, ...)")
    try:
        return study_from_dict(definition, source=path)
    except (TypeError, ValueError) as error:
        raise DataFormatError(path, str(error)) from None
