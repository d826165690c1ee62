"""The sentence-transformers losses: MNRL with one positive, ``mpr train``'s loss with several, GradCache, errors."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from mpretriever.data.groups import Group
from mpretriever.losses.st import (
    InfoNCELoss,
    JointLHLoss,
    LSEPairLoss,
    MultiPositiveDataCollator,
    Rand1LHLoss,
    SumMargLHLoss,
    text_key,
)
from mpretriever.model import BiEncoder
from mpretriever.training.dataset import GroupCollator
from mpretriever.training.objectives import OBJECTIVES
from mpretriever.training.step import batch_loss
from tests.losses.st.batches import assert_same, features, loss_and_gradients, make_texts

LOSSES = [LSEPairLoss, JointLHLoss, SumMargLHLoss, InfoNCELoss, Rand1LHLoss]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.from_pretrained(tiny_model_dir, normalize=True).eval()


@pytest.fixture(scope="module")
def model(encoder: BiEncoder) -> SentenceTransformer:
    return encoder.model


def one_positive_rows(negatives: int) -> list[dict]:
    texts = make_texts(6 * (2 + negatives), seed=1)
    rows = []
    for i in range(6):
        own = texts[i * (2 + negatives) : (i + 1) * (2 + negatives)]
        row = {"anchor": own[0], "positive": own[1]}
        row.update({f"negative_{n}": own[2 + n] for n in range(negatives)})
        rows.append(row)
    return rows


@pytest.mark.parametrize("loss_class", LOSSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("negatives", [0, 2])
@pytest.mark.parametrize("mini_batch_size", [None, 4])
def test_one_positive_equals_multiple_negatives_ranking_loss(
    model: SentenceTransformer, loss_class, negatives: int, mini_batch_size: int | None
) -> None:
    """(anchor, positive, negative_1..n) rows, collated by sentence-transformers' collator for MNRL and by ours
    for each loss: the same loss value and the same gradients of every parameter."""
    rows = one_positive_rows(negatives)
    reference_batch = SentenceTransformerDataCollator(preprocess_fn=model.preprocess)(rows)
    reference = loss_and_gradients(MultipleNegativesRankingLoss(model, scale=20.0), reference_batch, model)
    loss = loss_class(model, temperature=0.05, mini_batch_size=mini_batch_size)
    ours = loss_and_gradients(loss, MultiPositiveDataCollator.for_loss(loss)(rows), model)
    assert_same(ours, reference)


def multi_positive_rows() -> list[dict]:
    """Rows with several positives, a positive of one query that is another query's positive too, a negative of one
    query that is a positive of another, and a passage listed twice in the batch."""
    t = make_texts(40, seed=2)
    return [
        {"query": t[0], "pos": [t[1], t[2], t[3]], "neg": [t[4], t[5]]},
        {"query": t[6], "pos": [t[7], t[3]], "neg": [t[8], t[1]]},  # t[3]: a shared positive; t[1] q0's positive
        {"query": t[9], "pos": [t[10]], "neg": [t[11], t[12]]},
        {"query": t[13], "pos": [t[14], t[15], t[16], t[17]], "neg": [t[12], t[18]]},  # t[12] twice in the batch
        {"query": t[19], "pos": [t[20], t[21]], "neg": [t[22]]},
    ]


def test_collator_masks_by_text() -> None:
    rows = multi_positive_rows()
    collator = MultiPositiveDataCollator(preprocess_fn=lambda texts, **_: {"input_ids": torch.zeros(len(texts), 2)})
    labels = collator(rows)["label"]
    texts = [text for row in rows for text in (*row["pos"], *row["neg"])]
    assert labels["columns"].tolist() == [text_key(text) for text in texts]
    positive, ignore = labels["positive_mask"], labels["ignore_mask"]
    column = {text: texts.index(text) for text in texts}  # first copies
    shared, q0_positive, repeated = rows[0]["pos"][2], rows[0]["pos"][0], rows[2]["neg"][1]
    assert positive[1, column[shared]] and positive[0, column[shared]]  # row 0's copy of row 1's positive
    second_copy_of_q0_positive = texts.index(q0_positive, column[q0_positive] + 1)
    assert ignore[:, second_copy_of_q0_positive].all()  # a second copy counts once: ignored in every row
    assert not positive[1, column[q0_positive]]  # row 1 lists it as a negative: a negative there
    assert ignore[:, texts.index(repeated, column[repeated] + 1)].all()
    assert positive.sum(dim=1).tolist() == [3, 2, 1, 4, 2]
    assert not ignore[:, [column[text] for text in dict.fromkeys(texts)]].any()


def test_collator_policies_ignore_the_other_positives() -> None:
    rows = multi_positive_rows()
    preprocess = lambda texts, **_: {"input_ids": torch.zeros(len(texts), 2)}  # noqa: E731
    first = MultiPositiveDataCollator(preprocess_fn=preprocess, policy="first")(rows)["label"]
    assert first["positive_mask"].sum(dim=1).tolist() == [1] * len(rows)
    assert first["columns"].numel() == sum(1 + len(row["neg"]) for row in rows)
    q0_others = [text_key(text) for text in rows[0]["pos"][1:]]
    assert sorted(first["ignored_rows"][0][first["ignored_rows"][0] >= 0].tolist()) == sorted(q0_others)
    drawn = MultiPositiveDataCollator(preprocess_fn=preprocess, policy="one-random", seed=3)
    chosen = {frozenset(drawn(rows)["label"]["positive_rows"][3].tolist()) for _ in range(30)}
    assert len(chosen) > 1  # a fresh draw per batch among query 3's 4 positives
    capped = MultiPositiveDataCollator(preprocess_fn=preprocess, max_positives=2, max_negatives=1)(rows)["label"]
    assert capped["columns"].numel() == sum(min(2, len(row["pos"])) + 1 for row in rows)
    assert (capped["positive_rows"][3] >= 0).sum() == 4  # every positive of the query still counts as one


def mpr_train_batch(encoder: BiEncoder, rows: list[dict], labels: dict) -> dict:
    """The same batch as mpr train's GroupCollator builds it: a corpus of the rows' distinct texts, and per query a
    group of the passages the ST collator encoded for it, with its positives and ignored passages as corpus rows."""
    texts = list(dict.fromkeys(text for row in rows for text in (*row["pos"], *row["neg"])))
    corpus_row = {text_key(text): row for row, text in enumerate(texts)}
    passages = [corpus_row[key] for key in labels["columns"].tolist()]

    def corpus_rows(ids: torch.Tensor) -> frozenset[int]:
        return frozenset(corpus_row[key] for key in ids.tolist() if key >= 0)

    groups, start = [], 0
    for i, row in enumerate(rows):
        count = len(row["pos"]) + len(row["neg"])  # every positive and negative is encoded (no caps)
        groups.append(
            Group(
                tuple(passages[start : start + count]),
                corpus_rows(labels["positive_rows"][i]),
                corpus_rows(labels["ignored_rows"][i]),
            )
        )
        start += count
    assert start == len(passages)
    tokens = datasets.Dataset.from_dict({"input_ids": encoder.tokenize(texts, "passage")})
    collator = GroupCollator(encoder, encoder.tokenize([row["query"] for row in rows], "query"), tokens)
    return collator([{"index": i, "group": group} for i, group in enumerate(groups)])


@pytest.mark.parametrize("loss_class", [LSEPairLoss, JointLHLoss, SumMargLHLoss], ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("mini_batch_size", [None, 3])
def test_several_positives_equal_mpr_train(
    encoder: BiEncoder, model: SentenceTransformer, loss_class, mini_batch_size: int | None
) -> None:
    rows = multi_positive_rows()
    loss = loss_class(model, temperature=0.05, mini_batch_size=mini_batch_size)
    batch = MultiPositiveDataCollator.for_loss(loss)(rows)
    ours = loss_and_gradients(loss, batch, model)

    inputs = mpr_train_batch(encoder, rows, batch["label"])
    assert torch.equal(inputs["positive_mask"], batch["label"]["positive_mask"])
    encoder.zero_grad(set_to_none=True)
    value = batch_loss(encoder, encoder, inputs, OBJECTIVES[loss.objective].bind(), 0.05)
    value.backward()
    reference = value.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    assert_same(ours, reference)
    assert ours[0] > 0


def test_several_positives_differ_from_flattened_pairs(model: SentenceTransformer) -> None:
    """A check that the equivalences above can fail: MNRL on the rows flattened into one pair per positive makes a
    query's other positives negatives, and gives another loss."""
    rows = multi_positive_rows()
    loss = LSEPairLoss(model)
    ours = loss(*features(MultiPositiveDataCollator.for_loss(loss)(rows)))
    pairs = [{"anchor": row["query"], "positive": row["pos"][0]} for row in rows]
    flat = MultipleNegativesRankingLoss(model)(*features(SentenceTransformerDataCollator(model.preprocess)(pairs)))
    assert abs(ours.item() - flat.item()) > 1e-3


def test_options_and_config(model: SentenceTransformer) -> None:
    loss = LSEPairLoss(model, temperature=0.02, normalize=True, positive_agg="min")
    assert loss.scale == pytest.approx(50.0)
    assert loss.get_config_dict() == {
        "temperature": 0.02,
        "similarity_fct": "cos_sim",
        "gather_across_devices": False,
        "mini_batch_size": None,
        "normalize": True,
        "positive_agg": "min",
        "negative_agg": "all",
    }
    assert "2602.12727" in loss.citation
    with pytest.raises(ValueError, match="positive_agg must be"):
        LSEPairLoss(model, positive_agg="mean")(
            *features(MultiPositiveDataCollator.for_loss(loss)(multi_positive_rows()))
        )
    with pytest.raises(ValueError, match="temperature must be positive"):
        JointLHLoss(model, temperature=0)
    with pytest.raises(ValueError, match="mini_batch_size must be positive"):
        SumMargLHLoss(model, mini_batch_size=0)


def test_docstrings_follow_the_template() -> None:
    for loss_class in LOSSES:
        doc = loss_class.__doc__ or ""
        for section in ("Args:", "Requirements:", "Inputs:", "Recommendations:", "Relations:", "Example:"):
            assert section in doc, (loss_class.__name__, section)
        assert "{" + "common_args}" not in doc and "gather_across_devices:" in doc


def test_batches_from_another_collator_are_refused(model: SentenceTransformer) -> None:
    rows = multi_positive_rows()
    with pytest.raises(ValueError, match=r"collated for positive policy 'all', but InfoNCELoss needs 'first'"):
        InfoNCELoss(model)(*features(MultiPositiveDataCollator(model.preprocess)(rows)))
    pairs = one_positive_rows(0)
    with pytest.raises(ValueError, match="needs batches from MultiPositiveDataCollator"):
        LSEPairLoss(model)(*features(SentenceTransformerDataCollator(model.preprocess)(pairs)))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"query": "q", "pos": []}, "column 'pos' has no positive"),
        ({"query": "q", "pos": ["a", ""]}, "column 'pos' holds '', not a non-empty text"),
        ({"query": "", "pos": ["a"]}, "column 'query' holds '', not a query text"),
        ({"query": "q", "pos": ["a"], "neg": 3}, "column 'neg' holds int, not texts"),
        ({"query": "q", "pos": ["a"], "label": 1.0}, r"take no label column, but the dataset has \['label'\]"),
        ({"query": "q", "pos": ["a"], "pos_scores": [1.0]}, r"\['pos_scores'\] are not passages"),
    ],
)
def test_bad_rows(model: SentenceTransformer, row: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultiPositiveDataCollator(model.preprocess)([row])


def test_a_prompt_column_goes_before_the_query() -> None:
    seen: list[list[str]] = []

    def preprocess(texts: list[str], **_: object) -> dict:
        seen.append(list(texts))
        return {"input_ids": torch.zeros(len(texts), 2)}

    rows = [
        {"query": "q1", "pos": ["a"], "prompt": "Represent this query: "},
        {"query": "q2", "pos": ["b"], "prompt": ""},
    ]
    labels = MultiPositiveDataCollator(preprocess_fn=preprocess)(rows)["label"]
    assert seen[0] == ["Represent this query: q1", "q2"] and seen[1] == ["a", "b"]
    assert labels["columns"].numel() == 2  # the prompt is not read as a negative
