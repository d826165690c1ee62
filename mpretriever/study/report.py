"""The study's report: Markdown tables with paired significance tests, and a PNG plot.

For every condition, each objective's mean per measure (mean and sample standard deviation over seeds), its
difference to the base model, and two paired t-tests on per-query values (averaged over seeds first): against the
base model and against the single-positive InfoNCE run, each Holm-corrected over the objectives compared.
A summary table shows the primary measure of every objective under every condition (how each degrades with
noise or changes with the label regime).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpretriever.evaluation.significance import PairedComparison, compare_to_baseline
from mpretriever.files import atomic_file
from mpretriever.model.manifest import MANIFEST_NAME
from mpretriever.study.config import REFERENCE_OBJECTIVE, StudyConfig
from mpretriever.study.runner import EvaluatedModel, run_directory

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
PLOT_FILE = "study.png"
ALPHA = 0.05


def mean_per_query(models: Sequence[EvaluatedModel]) -> dict[str, dict[str, float]]:
    """Per-query values averaged over the seeds of one objective (queries all seeds answered)."""
    tables = [model.per_query() for model in models]
    common = set.intersection(*(set(table) for table in tables))
    return {
        query: {measure: statistics.fmean(table[query][measure] for table in tables) for measure in tables[0][query]}
        for query in sorted(common)
    }


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{mean:.4f}"


def _marker(comparison: PairedComparison | None, symbol: str) -> str:
    if comparison is None or not comparison.significant(ALPHA):
        return ""
    return symbol if comparison.difference > 0 else f"{symbol}⁻"


def _by_objective(evaluated: Sequence[EvaluatedModel], condition: str) -> dict[str, list[EvaluatedModel]]:
    grouped: dict[str, list[EvaluatedModel]] = {}
    for model in evaluated:
        if model.condition == condition:
            grouped.setdefault(model.objective, []).append(model)
    return grouped


def condition_table(
    config: StudyConfig, evaluated: Sequence[EvaluatedModel], condition: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """Markdown lines of one condition's table, and the rows' data (for ``results.json``)."""
    base = next(model for model in evaluated if model.objective == "base")
    base_per_query = base.per_query()
    grouped = _by_objective(evaluated, condition)
    per_query = {objective: mean_per_query(models) for objective, models in grouped.items()}
    labels = list(base.means)
    versus_base = {label: compare_to_baseline(base_per_query, per_query, label) for label in labels}
    others = {name: values for name, values in per_query.items() if name != REFERENCE_OBJECTIVE}
    versus_reference = (
        {label: compare_to_baseline(per_query[REFERENCE_OBJECTIVE], others, label) for label in labels}
        if REFERENCE_OBJECTIVE in per_query and others
        else {}
    )
    header = "| model | " + " | ".join(labels) + " |"
    lines = [header, "|" + "---|" * (len(labels) + 1)]
    lines.append("| base | " + " | ".join(f"{base.means[label]:.4f}" for label in labels) + " |")
    rows: list[dict[str, Any]] = []
    for objective in config.objectives:
        if objective not in grouped:
            continue
        cells, row = [], {"objective": objective, "seeds": [m.seed for m in grouped[objective]], "measures": {}}
        for label in labels:
            values = [model.means[label] for model in grouped[objective]]
            against_base = versus_base[label][objective]
            against_reference = versus_reference.get(label, {}).get(objective)
            difference = statistics.fmean(values) - base.means[label]
            markers = _marker(against_base, "†") + _marker(against_reference, "‡")
            cells.append(f"{_spread(values)} ({difference:+.4f}){markers}")
            row["measures"][label] = {
                "values": values,
                "mean": statistics.fmean(values),
                "stdev": statistics.stdev(values) if len(values) > 1 else None,
                "difference_to_base": difference,
                "p_vs_base_holm": against_base.adjusted_p_value,
                "p_vs_infonce_holm": against_reference.adjusted_p_value if against_reference else None,
            }
        lines.append(f"| {objective} | " + " | ".join(cells) + " |")
        rows.append(row)
    return lines, rows


def dev_selection_lines(evaluated: Sequence[EvaluatedModel], output: Path, condition: str) -> list[str]:
    """For runs trained with a dev set: which step was kept, and whether it beat the starting model on dev."""
    lines = []
    for model in evaluated:
        if model.condition != condition or model.seed is None:
            continue
        manifest_path = run_directory(output, condition, model.objective, model.seed) / "model" / MANIFEST_NAME
        if not manifest_path.is_file():
            continue
        dev = json.loads(manifest_path.read_text(encoding="utf-8")).get("dev_evaluation")
        if not dev or not dev.get("kept") or not dev.get("start"):
            continue
        metric = dev["metric_for_best"]
        steps = dev["curve"][-1]["step"] if dev["curve"] else "?"
        kept, start = dev["kept"][metric], dev["start"][metric]
        corpus = f"{dev['dev_set']['corpus']} corpus of {dev['dev_set']['passages']} passages"
        if dev["beats_start"]:
            against_start = f"{kept - start:+.4f} over the starting model's {start:.4f} ({_dev_test(dev)}; {corpus})"
        else:
            against_start = (
                f"**not above** the starting model's {start:.4f} ({kept - start:+.4f}; {_dev_test(dev)}; {corpus})"
            )
        lines.append(
            f"- {model.objective}, seed {model.seed}: step {dev['kept_step']} of {steps} kept, dev {metric} "
            f"{kept:.4f}, {against_start}"
        )
    return ["Dev selection:", "", *lines, ""] if lines else []


def _dev_test(dev: dict[str, Any]) -> str:
    """``p 0.41, not significant, paired t-test over 30 dev queries`` for the kept step against the start, or the
    number of dev queries alone when the manifest has no test of that step."""
    queries = f"{dev['dev_set']['queries']} dev queries"
    test = dev.get("against_start")
    if not test or test.get("step") != dev["kept_step"]:
        return queries
    significance = "significant" if test["p_value"] < ALPHA else "not significant"
    return f"p {test['p_value']:.2g}, {significance}, paired {test['test']} over {queries}"


def summary_table(config: StudyConfig, evaluated: Sequence[EvaluatedModel]) -> list[str]:
    """The primary measure of every objective under every condition (mean over seeds)."""
    base = next(model for model in evaluated if model.objective == "base")
    label = next(iter(base.means))
    conditions = [c.name for c in config.conditions if any(m.condition == c.name for m in evaluated)]
    lines = [f"| {label} | " + " | ".join(conditions) + " |", "|" + "---|" * (len(conditions) + 1)]
    lines.append("| base | " + " | ".join(f"{base.means[label]:.4f}" for _ in conditions) + " |")
    for objective in config.objectives:
        cells = []
        for condition in conditions:
            models = _by_objective(evaluated, condition).get(objective)
            cells.append(f"{statistics.fmean(m.means[label] for m in models):.4f}" if models else "-")
        lines.append(f"| {objective} | " + " | ".join(cells) + " |")
    return lines


def describe_conditions(config: StudyConfig) -> list[str]:
    lines = []
    for condition in config.conditions:
        options = {**config.train, **condition.train}
        text = ", ".join(f"{key}={value}" for key, value in sorted(condition.train.items())) or "shared options"
        if condition.noise:
            text += f"; {condition.noise.share:.0%} of the positives replaced by {condition.noise.kind} false positives"
        if condition.negatives:
            window = ", ".join(f"{key}={value}" for key, value in sorted(condition.negatives.items()))
            text += f"; BM25 hard negatives ({window})"
        lines.append(f"- **{condition.name}**: {text} (split `{options.get('split', 'train')}`)")
    return lines


def write_report(
    config: StudyConfig,
    evaluated: Sequence[EvaluatedModel],
    output: Path,
    command: str | None = None,
    wall_time_s: float | None = None,
    plot: bool = True,
) -> list[Path]:
    """Write ``results.json``, ``report.md`` and (with matplotlib) ``study.png`` into ``output``."""
    shared = ", ".join(f"{key}={value}" for key, value in sorted(config.train.items()))
    lines = [f"# Study: {config.name}", ""]
    if command:
        lines += ["Reproduce with:", "", "```bash", command, "```", ""]
    lines += [
        f"Dataset `{config.data}`, evaluated on `{config.eval_split}` (exact search); base model "
        f"`{config.model or 'all-MiniLM-L6-v2 (packaged)'}`; seeds {config.seeds}; shared training options: {shared}.",
        "",
        *describe_conditions(config),
        "",
        "Cells: mean over seeds (± sample standard deviation when several), difference to the base model in "
        f"brackets. † / †⁻: significantly better / worse than the base model, ‡ / ‡⁻: than `{REFERENCE_OBJECTIVE}` "
        f"(paired two-sided t-test on per-query values averaged over seeds, Holm-corrected over the objectives, "
        f"alpha = {ALPHA}).",
        "",
    ]
    results: dict[str, Any] = {"study": config.name, "conditions": {}, "wall_time_s": wall_time_s}
    for condition in config.conditions:
        if not any(model.condition == condition.name for model in evaluated):
            continue
        table, rows = condition_table(config, evaluated, condition.name)
        lines += [f"## {condition.name}", "", *table, "", *dev_selection_lines(evaluated, output, condition.name)]
        results["conditions"][condition.name] = rows
    if len(results["conditions"]) > 1:
        lines += ["## All conditions", "", *summary_table(config, evaluated), ""]
    written = []
    if plot:
        picture = plot_study(config, evaluated, output / PLOT_FILE)
        if picture is not None:
            lines += [f"![{config.name}]({PLOT_FILE})", ""]
            written.append(picture)
    if wall_time_s is not None:
        lines += [f"Wall time of this invocation: {wall_time_s / 60:.1f} min."]
    results["models"] = [model.to_dict(output) for model in evaluated]
    with atomic_file(output / RESULTS_FILE) as handle:
        json.dump(results, handle, indent=2)
    with atomic_file(output / REPORT_FILE) as handle:
        handle.write("\n".join(lines).rstrip() + "\n")
    return [output / RESULTS_FILE, output / REPORT_FILE, *written]


def plot_study(config: StudyConfig, evaluated: Sequence[EvaluatedModel], path: Path) -> Path | None:
    """Bars per objective for every condition, one panel per measure, the base model as a dashed line.

    Returns ``None`` when matplotlib is not importable (it is a dependency of mpretriever).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    base = next(model for model in evaluated if model.objective == "base")
    labels = list(base.means)
    conditions = [c.name for c in config.conditions if any(m.condition == c.name for m in evaluated)]
    width = 0.8 / len(config.objectives)
    figure, axes = plt.subplots(1, len(labels), figsize=(4.5 * len(labels), 4), squeeze=False)
    for axis, label in zip(axes[0], labels, strict=True):
        for number, objective in enumerate(config.objectives):
            means, errors = [], []
            for condition in conditions:
                values = [m.means[label] for m in _by_objective(evaluated, condition).get(objective, [])]
                means.append(statistics.fmean(values) if values else float("nan"))
                errors.append(statistics.stdev(values) if len(values) > 1 else 0.0)
            positions = [
                index + (number - (len(config.objectives) - 1) / 2) * width for index in range(len(conditions))
            ]
            axis.bar(positions, means, width, yerr=errors if any(errors) else None, label=objective, capsize=2)
        axis.axhline(base.means[label], color="black", linestyle="--", linewidth=1, label="base")
        axis.set_xticks(range(len(conditions)), conditions, rotation=20, ha="right")
        axis.set_title(label)
        finite = [m.means[label] for m in evaluated]
        low, high = min(finite), max(finite)
        axis.set_ylim(max(0.0, low - (high - low) * 0.5 - 0.01), high + (high - low) * 0.3 + 0.01)
    axes[0][-1].legend(fontsize="small", loc="best")
    figure.suptitle(f"{config.name}: {config.eval_split}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
