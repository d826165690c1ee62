"""``mpr quickstart``: the whole loop on one dataset, on a laptop: fine-tune, index, evaluate, compare.

1. fine-tune the base model with a multi-positive objective (LSEPair by default) on the dataset's training labels,
   with :class:`~mpretriever.training.run.TrainConfig`'s defaults (the measured recipe), keeping the checkpoint
   best on the dev split (or on held-out training queries when the dataset has none);
2. index the corpus twice into an embedded Qdrant: with the base model and with the fine-tuned one;
3. evaluate both through the Haystack retriever (the component the RAG pipelines use) on the test split;
4. print the comparison, with a paired t-test per measure (fine-tuned against base, † where p < 0.05), and how
   to search the two collections.

Each step is the library's own (:func:`~mpretriever.training.run.train`,
:func:`~mpretriever.index.run.index_dataset`, :func:`~mpretriever.evaluation.retrieval.evaluate_retrieval`),
so the quickstart is also the shortest example of using them together.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mpretriever.data.beir import BeirDataset
from mpretriever.data.resolve import resolve_dataset
from mpretriever.evaluation.retrieval import EvalConfig, EvalReport, evaluate_retrieval
from mpretriever.evaluation.significance import paired_test
from mpretriever.files import OutputExistsError
from mpretriever.index import QdrantSettings, index_dataset, model_reference
from mpretriever.index.run import IndexOutcome
from mpretriever.index.versions import prune
from mpretriever.model.bi_encoder import DEFAULT_MODEL_NAME, BiEncoder
from mpretriever.model.manifest import MANIFEST_NAME
from mpretriever.search.embeddings import EmbeddingCache
from mpretriever.training.dev_curve import DEV_CURVE_PLOT, DevCurve
from mpretriever.training.run import TrainConfig, train


@dataclass
class QuickstartConfig:
    """What the quickstart runs: the training recipe of :class:`~mpretriever.training.run.TrainConfig` (16 queries
    x 4 passages, LSEPair, learning rate 1e-4) on the grade-3 (direct) links of ``train-graded`` (falling back to
    ``train``), selected on ``dev_split`` (falling back to ``dev_queries`` held-out training queries), for
    ``num_train_epochs``: 2, half the recipe's 4, evaluating on dev every ``eval_steps`` (a fraction of the run:
    0.5 evaluates the start, the middle and the end, where ``mpr train`` evaluates every fifth), so that the
    quickstart takes 11-46 min on 2 CPU cores. ``max_steps`` cuts the run short (-1: follow the epochs);
    ``train`` holds any other ``TrainConfig`` option or ``TrainingArguments`` field."""

    data: str = "nfcorpus"
    output: Path = Path("runs/quickstart")
    model: str | None = None
    loss: str = "lsepair"
    train_split: str = "train-graded"
    min_grade: int = 3
    eval_split: str = "test"
    dev_split: str = "dev"
    dev_queries: int = 100
    num_train_epochs: float = 2.0
    eval_steps: float = 0.5
    max_steps: int = -1
    seed: int = 42
    train: dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.output = Path(self.output)


@dataclass
class QuickstartOutcome:
    base: EvalReport
    tuned: EvalReport
    model_dir: Path
    timings: dict[str, float]
    qdrant_path: Path
    dev_curve: DevCurve | None
    example_query: str
    """A query of the evaluation split, for the ``mpr search`` command line the summary suggests."""
    steps: int = 0
    indexed_from_cache: tuple[str, ...] = ()
    """The collections (``base``, ``tuned``) whose vectors came from the dev evaluation's embeddings."""

    def describe_training(self) -> str:
        """``118 steps, step 96 kept on dev``."""
        kept = self.dev_curve.kept_step if self.dev_curve is not None else None
        return f"{self.steps} steps" + (f", step {kept} kept on dev" if kept is not None else "")


def _train_split(dataset: BeirDataset, preferred: str) -> str:
    return preferred if preferred in dataset.available_splits() else "train"


def _dev_options(config: QuickstartConfig, dataset: BeirDataset, split: str) -> dict[str, Any]:
    """The dev split when the dataset has one, else held-out training queries: ``dev_queries``, at most a fifth."""
    if config.dev_split in dataset.available_splits():
        return {"eval_split": config.dev_split}
    return {"dev_queries": max(1, min(config.dev_queries, len(dataset.qrels(split)) // 5))}


def _index(model: str, dataset: BeirDataset, qdrant: QdrantSettings, alias: str, progress: bool) -> IndexOutcome:
    """Index behind ``alias`` (a re-run with another model switches it), keeping only the served version: the
    quickstart's Qdrant directory is its own. When the dev set's corpus is the whole corpus, the vectors come from
    the embedding cache, where training's dev evaluation left the starting model's and the kept step's, each
    embedded as it is served."""
    encoder = BiEncoder.from_pretrained(model)
    outcome = index_dataset(
        encoder,
        dataset.corpus,
        dataset.name,
        qdrant,
        alias,
        model,
        alias=True,
        show_progress=progress,
        cache=EmbeddingCache(),
    )
    client = qdrant.connect()
    try:
        prune(client, alias, keep=1)
    finally:
        client.close()
    return outcome


def run_quickstart(config: QuickstartConfig, console: Console | None = None) -> QuickstartOutcome:
    """Fine-tune, index and evaluate; results go under ``config.output`` (model, Qdrant data, evaluations)."""
    console = console or Console(stderr=True)
    if config.output.exists() and any(config.output.iterdir()) and not config.overwrite:
        raise OutputExistsError(
            f"{config.output} already exists and is not empty; pass --overwrite or choose another --output"
        )
    dataset = BeirDataset(resolve_dataset(config.data))
    split = _train_split(dataset, config.train_split)
    model_dir = config.output / "model"
    qdrant = QdrantSettings(path=str(config.output / "qdrant"))
    base_model = model_reference(config.model) if config.model else None
    timings: dict[str, float] = {}

    started = time.perf_counter()
    console.rule(f"1/3 fine-tuning with {config.loss} on {dataset.name} '{split}' (grade >= {config.min_grade})")
    outcome = train(
        TrainConfig.from_options(
            data=str(dataset.root),
            output=model_dir,
            split=split,
            loss=config.loss,
            model=base_model,
            min_grade=config.min_grade,
            max_steps=config.max_steps,
            seed=config.seed,
            overwrite=config.overwrite,
            progress=config.progress,
            **{
                "num_train_epochs": config.num_train_epochs,
                "eval_steps": config.eval_steps,
                **_dev_options(config, dataset, split),
                **config.train,
            },
        ),
        console=console,
    )
    timings["train_s"] = time.perf_counter() - started

    started = time.perf_counter()
    console.rule(f"2/3 indexing {len(dataset.corpus)} passages into {qdrant.location}, base and fine-tuned")
    models = {"base": base_model or DEFAULT_MODEL_NAME, "tuned": str(model_dir.resolve())}
    indexed = {
        name: _index(model, dataset, qdrant, f"{dataset.name}-{name}", config.progress)
        for name, model in models.items()
    }
    timings["index_s"] = time.perf_counter() - started

    started = time.perf_counter()
    console.rule(f"3/3 evaluating on '{config.eval_split}' through the Haystack retriever")
    reports = {
        name: evaluate_retrieval(
            EvalConfig(
                data=str(dataset.root),
                split=config.eval_split,
                collection=f"{dataset.name}-{name}",
                qdrant=qdrant,
                output=config.output / f"eval-{name}",
                overwrite=config.overwrite,
                progress=config.progress,
            ),
            console=console,
        )
        for name in models
    }
    timings["eval_s"] = time.perf_counter() - started
    first_query = next(iter(reports["tuned"].result("qdrant").run))
    return QuickstartOutcome(
        reports["base"],
        reports["tuned"],
        model_dir,
        timings,
        config.output / "qdrant",
        outcome.dev_curve,
        dataset.queries[first_query],
        outcome.steps,
        tuple(name for name, index in indexed.items() if index.stats.from_cache),
    )


def comparison_table(outcome: QuickstartOutcome, title: str) -> Table:
    """Base against fine-tuned per measure, with the difference and the paired t-test's p-value; a difference
    whose p-value is below 0.05 is marked †, as in the study's report."""
    base, tuned = outcome.base.result("qdrant"), outcome.tuned.result("qdrant")
    queries = len(set(base.per_query) & set(tuned.per_query))
    table = Table(title=title, caption=f"† p < 0.05 (paired two-sided t-test over {queries} queries)")
    for column in ("measure", "base", "fine-tuned", "difference", "p (paired t)"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for measure, base_value in base.means.items():
        comparison = paired_test(base.per_query, tuned.per_query, measure)
        difference = comparison.difference
        colour = "green" if difference > 0 else "red" if difference < 0 else "white"
        table.add_row(
            measure,
            f"{base_value:.4f}",
            f"{tuned.means[measure]:.4f}",
            f"[{colour}]{difference:+.4f}[/]" + ("†" if comparison.significant() else " "),
            f"{comparison.p_value:.3g}",
        )
    return table


def summary(outcome: QuickstartOutcome) -> list[str]:
    """What was built and where, how to search it, and how long each step took."""
    timings = outcome.timings
    search = shlex.join(
        [
            "mpr",
            "search",
            outcome.example_query,
            "--collection",
            str(outcome.tuned.collection),
            "--qdrant-path",
            str(outcome.qdrant_path),
        ]
    )
    curve = outcome.dev_curve
    verdict = [] if curve is None else [Text.from_markup(line).plain for line in curve.verdict()]
    selected = [line for line in verdict if not line.startswith("dev set:")]
    return [
        *selected,
        f"dev curve: {outcome.model_dir / DEV_CURVE_PLOT} (table in {outcome.model_dir / MANIFEST_NAME})",
        f"fine-tuned model: {outcome.model_dir}",
        f"collections: {outcome.base.collection} (base model), {outcome.tuned.collection} (fine-tuned), "
        f"in the embedded Qdrant at {outcome.qdrant_path}",
        f"results: {outcome.base.output}, {outcome.tuned.output}",
        f"{sum(timings.values()) / 60:.1f} min (train {timings['train_s']:.0f} s, index {timings['index_s']:.0f} s"
        + (
            f" with the {' and '.join(outcome.indexed_from_cache)} vectors from dev"
            if outcome.indexed_from_cache
            else ""
        )
        + f", evaluate {timings['eval_s']:.0f} s)",
        f"search the fine-tuned collection: {search}",
    ]
