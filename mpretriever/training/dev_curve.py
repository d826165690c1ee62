"""The dev curve of a training run: every evaluation's figures by step, which one was kept, and whether any step
beat the starting model. Read from the Trainer's own log history; saved in the manifest and drawn as a PNG."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transformers import TrainerState

from mpretriever.evaluation.significance import PairedComparison, PerQuery, paired_test
from mpretriever.training.dev_set import DevSet

logger = logging.getLogger(__name__)

DEV_CURVE_PLOT = "dev-curve.png"
EVAL_PREFIX = "eval_"


@dataclass(frozen=True)
class DevPoint:
    step: int
    epoch: float
    values: dict[str, float]


@dataclass(frozen=True)
class DevCurve:
    """The evaluations of a run, in step order; the first is the starting model's (step 0)."""

    dev_set: dict[str, Any]
    headline: str
    metric: str
    points: tuple[DevPoint, ...]
    kept_step: int | None
    """The step of the saved model: the best checkpoint's, 0 when no trained step beat the starting model (which
    is then saved), or the last step when best-model loading is off."""
    against_start: PairedComparison | None = None
    """The paired t-test over the dev queries of the compared step (:attr:`compared_step`) against the starting
    model, on the metric; ``None`` when the per-query values of either are missing (a resumed run reads those
    of steps evaluated before it from the run's ``dev-per-query`` records)."""

    @classmethod
    def from_trainer_state(
        cls, state: TrainerState, dev_set: DevSet, labels: Sequence[str], metric: str, load_best: bool
    ) -> DevCurve:
        points: dict[int, DevPoint] = {}
        for entry in state.log_history:
            key = EVAL_PREFIX + metric
            if key not in entry:
                continue
            values = {label: float(entry[EVAL_PREFIX + label]) for label in labels if EVAL_PREFIX + label in entry}
            points[int(entry["step"])] = DevPoint(int(entry["step"]), float(entry.get("epoch") or 0.0), values)
        loaded = state.best_model_checkpoint if load_best else None
        kept = int(Path(loaded).name.rsplit("-", 1)[1]) if loaded else state.global_step
        return cls(dev_set.describe(), dev_set.headline(), metric, tuple(points[s] for s in sorted(points)), kept)

    def compared_with_start(self, per_query: Mapping[int, PerQuery]) -> DevCurve:
        """A copy with the paired test of the saved step (or, when the starting model was saved, of the best
        trained step) against the start, from the per-query values of each evaluated ``step``: whether the dev set
        can tell the two apart, or the difference may be its noise."""
        step = self._step_to_compare()
        if step is None or 0 not in per_query or step not in per_query:
            return replace(self, against_start=None)
        return replace(self, against_start=paired_test(per_query[0], per_query[step], self.metric))

    def _step_to_compare(self) -> int | None:
        """The saved step, or the best trained step when the starting model was saved (``None``: no trained step)."""
        if self.kept_step:
            return self.kept_step
        best = self.best
        return best.step if best is not None else None

    @property
    def compared_step(self) -> int | None:
        """The step :attr:`against_start` compares with the start; ``None`` without the test."""
        return self._step_to_compare() if self.against_start is not None else None

    def _significance(self) -> str:
        """`` (paired t-test over 30 dev queries: p 0.41, not significant)``, or nothing without the test."""
        test = self.against_start
        if test is None:
            return ""
        verdict = "" if test.significant() else ", not significant: the difference may be the dev set's noise"
        return f" (paired t-test over {test.queries} dev queries: p {test.p_value:.2g}{verdict})"

    @property
    def start(self) -> DevPoint | None:
        """The starting model's evaluation (step 0), when the run began there (a resumed run may not have it)."""
        return self.points[0] if self.points and self.points[0].step == 0 else None

    @property
    def trained(self) -> list[DevPoint]:
        return [point for point in self.points if point.step > 0]

    @property
    def best(self) -> DevPoint | None:
        """The trained step best by the metric (the first of equals, as the Trainer keeps the first)."""
        best: DevPoint | None = None
        for point in self.trained:
            if best is None or point.values[self.metric] > best.values[self.metric]:
                best = point
        return best

    @property
    def kept(self) -> DevPoint | None:
        return next((point for point in self.points if point.step == self.kept_step), None)

    @property
    def start_is_best(self) -> bool:
        """Whether the starting model scored at least as high as every evaluated trained step."""
        start, best = self.start, self.best
        return start is not None and best is not None and best.values[self.metric] <= start.values[self.metric]

    @property
    def beats_start(self) -> bool | None:
        """Whether the kept model scores above the starting model on the metric (``None``: not both measured)."""
        start, kept = self.start, self.kept
        if start is None or kept is None:
            return None
        return kept.values[self.metric] > start.values[self.metric]

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``dev_evaluation``: what was measured on, the table, and the verdict."""
        start, kept = self.start, self.kept
        return {
            "dev_set": self.dev_set,
            "metric_for_best": self.metric,
            "start": start.values if start else None,
            "kept_step": self.kept_step,
            "kept": kept.values if kept else None,
            "beats_start": self.beats_start,
            "against_start": None
            if self.against_start is None
            else {
                "step": self.compared_step,
                "test": self.against_start.test,
                "queries": self.against_start.queries,
                "difference": self.against_start.difference,
                "p_value": self.against_start.p_value,
            },
            "curve": [{"step": p.step, "epoch": round(p.epoch, 4), **p.values} for p in self.points],
        }

    def verdict(self) -> list[str]:
        """What the run says at its end: the dev set, the starting and kept figures, and plainly whether training
        made the model better on dev."""
        lines = [f"dev set: {self.headline}"]
        start, kept = self.start, self.kept
        if kept is None:
            best = self.best
            unsaved = f" The best evaluated step ({best.step}) was not saved as a checkpoint" if best else ""
            return [
                *lines,
                f"[yellow]the saved model (step {self.kept_step}, the last) was not evaluated on the dev set.{unsaved}"
                "[/]: keep --save-steps equal to --eval-steps (the default) to save the best one.",
            ]
        kept_text = f"{self.metric} {kept.values[self.metric]:.4f} at step {kept.step} (saved)"
        if start is None:
            return [*lines, f"dev {kept_text}; the starting model was not evaluated (resumed run)"]
        start_text = f"{start.values[self.metric]:.4f} for the starting model"
        if self.beats_start:
            gain = kept.values[self.metric] - start.values[self.metric]
            return [*lines, f"[green]dev {kept_text}, {gain:+.4f} over {start_text}[/]{self._significance()}"]
        remedies = "try a lower --learning-rate, fewer epochs, cleaner positives (--min-grade) or another --loss"
        if kept.step == 0:
            best = self.best
            best_text = f"the best trained step, {best.step}, reached {best.values[self.metric]:.4f}" if best else ""
            return [
                *lines,
                f"[bold yellow]no evaluated step beat the starting model on dev[/]: {best_text} against "
                f"{start_text}{self._significance()}. The starting model was saved unchanged "
                f"(--load-best-model-at-end false saves the last step instead); {remedies}.",
            ]
        return [
            *lines,
            f"[bold yellow]no evaluated step beat the starting model on dev[/]: {kept_text} against {start_text}"
            f"{self._significance()}. The saved model is not better than the one you started from; {remedies}.",
        ]

    def plot(self, path: Path) -> Path | None:
        """Draw every measure against the step, the starting model's figure as a dashed line and the saved step
        marked. Returns ``None`` (and logs why) without matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            logger.warning("matplotlib is not installed: %s not drawn", path)
            return None
        labels = list(self.points[0].values) if self.points else []
        figure, axes = plt.subplots(1, max(len(labels), 1), figsize=(3.2 * max(len(labels), 1), 3.0), squeeze=False)
        for axis, label in zip(axes[0], labels, strict=False):
            steps = [point.step for point in self.points]
            axis.plot(steps, [point.values[label] for point in self.points], marker="o", markersize=3)
            if self.start is not None:
                axis.axhline(self.start.values[label], linestyle="--", color="grey", linewidth=0.8, label="start")
            if self.kept is not None:
                axis.axvline(self.kept.step, linestyle=":", color="green", linewidth=0.8, label="saved")
            axis.set_title(label + (" (selects)" if label == self.metric else ""), fontsize=9)
            axis.set_xlabel("step", fontsize=8)
            axis.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7)
        figure.suptitle(self.headline, fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path
