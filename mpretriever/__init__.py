"""mpretriever: dense retrievers trained with multiple positive passages."""

__version__ = "0.1.0"
