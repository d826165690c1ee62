"""Training: objectives, the grouped dataset and collator, the Trainer subclass and the run driver."""

from mpretriever.training.objectives import OBJECTIVES, Objective, get_objective
from mpretriever.training.resume import ResumeMismatchError
from mpretriever.training.run import OutputExistsError, TrainConfig, TrainOutcome, train

__all__ = [
    "OBJECTIVES",
    "Objective",
    "OutputExistsError",
    "ResumeMismatchError",
    "TrainConfig",
    "TrainOutcome",
    "get_objective",
    "train",
]
