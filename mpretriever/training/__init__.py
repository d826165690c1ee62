"""Training: objectives, the grouped dataset and collator, the Trainer subclass and the run driver."""

from mpretriever.training.objectives import OBJECTIVES, Objective, get_objective
from mpretriever.training.run import OutputExistsError, TrainConfig, TrainOutcome, train

__all__ = ["OBJECTIVES", "Objective", "OutputExistsError", "TrainConfig", "TrainOutcome", "get_objective", "train"]
