"""The parts of the loss classes' docstrings that every one of them shares (put in by :func:`fill`)."""

import re

COMMON_ARGS = """
        model: the SentenceTransformer model to train.
        temperature: the scores are divided by it (``scale = 1 / temperature``; 0.05 is sentence-transformers'
            ``scale=20``). With cosine similarity use about 0.02-0.05.
        similarity_fct: the similarity of query and passage embeddings (default cosine, as
            MultipleNegativesRankingLoss).
        gather_across_devices: under DDP, score each process's queries against the passages of every process,
            with masks rebuilt from the passages' ids, so a positive held by another process counts as a positive.
        mini_batch_size: embed ``mini_batch_size`` texts at a time and back-propagate chunk by chunk (GradCache, as
            sentence-transformers' Cached* losses): the memory of a small batch, the gradients of the whole one.
"""

REQUIREMENTS = """
    Requirements:
        1. Batches from :class:`~mpretriever.losses.st.MultiPositiveDataCollator` built for this loss
           (``MultiPositiveDataCollator.for_loss(loss)``, passed to the trainer as ``data_collator``).
        2. A dataset whose first column is the query, whose second is a list of positives, and whose other columns
           are negatives (lists or single texts); FlagEmbedding's ``{"query", "pos", "neg"}`` rows as they are.

    Inputs:
        +------------------------------------------------+--------+
        | Texts                                          | Labels |
        +================================================+========+
        | (query, [positive, ...])                       | none   |
        +------------------------------------------------+--------+
        | (query, [positive, ...], [negative, ...])      | none   |
        +------------------------------------------------+--------+
        | (query, [positive, ...], negative_1, ..., n)   | none   |
        +------------------------------------------------+--------+
"""


def fill(cls: type) -> type:
    """Put the shared parts into a loss class's docstring: each line ``{common_args}`` / ``{requirements}``."""
    doc = cls.__doc__ or ""
    for name, block in (("common_args", COMMON_ARGS), ("requirements", REQUIREMENTS)):
        doc = re.sub(rf"^[ \t]*\{{{name}\}}$", lambda _, block=block: block.strip("\n"), doc, flags=re.MULTILINE)
    cls.__doc__ = doc
    return cls
