"""The objective-comparison study (``mpr study``): every objective trained on the same labels, steps and seeds,
evaluated against the base model and single-positive InfoNCE, under several label regimes and label noise."""

from mpretriever.study.config import Condition, NoiseSpec, StudyConfig, load_study, study_from_dict
from mpretriever.study.report import write_report
from mpretriever.study.runner import EvaluatedModel, collect_study, run_study

__all__ = [
    "Condition",
    "EvaluatedModel",
    "NoiseSpec",
    "StudyConfig",
    "collect_study",
    "load_study",
    "run_study",
    "study_from_dict",
    "write_report",
]
