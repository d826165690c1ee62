"""LSEPair as a sentence-transformers loss."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer

from mpretriever.losses.lse_pair import NegativeAggregation, PositiveAggregation
from mpretriever.losses.st import _docs
from mpretriever.losses.st.base import MultiPositiveLoss, Similarity, cos_sim


@_docs.fill
class LSEPairLoss(MultiPositiveLoss):
    """LSEPair (Wang et al., KDD 2026): ``log(1 + sum_n sum_p exp(s_n - s_p))`` per query, every positive against
    every negative, so that a query's positives never compete with each other.

    Each query is scored against all passages of the batch (its own positives and negatives and every other
    query's, as in-batch negatives). Passages are matched by their text, so a passage that is also a positive of
    this query in another query's list counts as a positive, never as a negative. The gradient goes to the weakest
    positive and the hardest negatives, and its total push on the positives stays below 1 per query: in the paper
    the most robust of the multi-positive objectives across label regimes (LLM-only labels; human + LLM labels).

    Args:
        {common_args}
        normalize: divide each query's loss by its number of positives.
        positive_agg: ``"all"`` (every positive), ``"min"`` (only the weakest) or ``"max"`` (only the strongest).
        negative_agg: ``"all"`` (every negative) or ``"max"`` (only the hardest).

    {requirements}

    Recommendations:
        - The default of ``mpr train``: at most 3 positives of a group of 4 per query (``max_positives=3`` in the
          collator, with hard negatives filling the group), learning rate 1e-4.
        - Duplicates need no special batch sampler: a passage met twice in a batch is scored once.

    Relations:
        - With one positive per query it equals :class:`~sentence_transformers.losses.MultipleNegativesRankingLoss`
          (InfoNCE): the same loss and gradients (tested).
        - :class:`JointLHLoss` and :class:`SumMargLHLoss` are the softmax-based alternatives; they are more sensitive
          to false or weak positives.
        - ``mpr train --loss lsepair`` trains the same objective through mpretriever's own trainer.

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer

            from mpretriever.losses.st import LSEPairLoss, MultiPositiveDataCollator

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            train_dataset = Dataset.from_dict({
                "query": ["what lowers cholesterol", "is coffee bad for sleep"],
                "pos": [["Statins reduce LDL cholesterol.", "Oat fibre lowers cholesterol."],
                        ["Caffeine delays sleep onset."]],
                "neg": [["Coffee is grown in Brazil."], ["Oats are a cereal grain."]],
            })
            loss = LSEPairLoss(model)
            trainer = SentenceTransformerTrainer(
                model=model,
                train_dataset=train_dataset,
                loss=loss,
                data_collator=MultiPositiveDataCollator.for_loss(loss, max_positives=3),
            )
            trainer.train()
    """

    objective = "lsepair"

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.05,
        similarity_fct: Similarity = cos_sim,
        gather_across_devices: bool = False,
        mini_batch_size: int | None = None,
        normalize: bool = False,
        positive_agg: PositiveAggregation = "all",
        negative_agg: NegativeAggregation = "all",
    ) -> None:
        super().__init__(
            model,
            temperature,
            similarity_fct,
            gather_across_devices,
            mini_batch_size,
            normalize=normalize,
            positive_agg=positive_agg,
            negative_agg=negative_agg,
        )
