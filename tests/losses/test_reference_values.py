"""Reference values from the specification (docs/losses.md), temperature 1."""

from __future__ import annotations

import pytest
import torch

from mpretriever.losses import info_nce, joint_lh, lse_pair, sum_marg_lh

SCORES = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, 0.3], [0.2, -0.5, 1.0, 1.5, 0.7, -0.2]])
POSITIVES = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]], dtype=torch.bool)

REFERENCE = [
    ("JointLH", joint_lh, {}, (2.344680, 0.973204, 1.658942)),
    ("JointLH normalize", joint_lh, {"normalize": True}, (1.172340, 0.973204, 1.072772)),
    ("SumMargLH", sum_marg_lh, {}, (0.359078, 0.973204, 0.666141)),
    ("LSEPair", lse_pair, {}, (1.162296, 0.973204, 1.067750)),
    ("LSEPair normalize", lse_pair, {"normalize": True}, (0.581148, 0.973204, 0.777176)),
]


@pytest.mark.parametrize(("name", "loss", "options", "expected"), REFERENCE, ids=[r[0] for r in REFERENCE])
def test_reference_rows_and_batch_mean(name, loss, options, expected) -> None:
    row0, row1, mean = expected
    assert loss(SCORES[:1], POSITIVES[:1], **options).item() == pytest.approx(row0, abs=1e-5)
    assert loss(SCORES[1:], POSITIVES[1:], **options).item() == pytest.approx(row1, abs=1e-5)
    assert loss(SCORES, POSITIVES, **options).item() == pytest.approx(mean, abs=1e-5)


def test_info_nce_reference_row() -> None:
    # Row 1 has a single positive: every objective gives InfoNCE's value there.
    assert info_nce(SCORES[1:], POSITIVES[1:]).item() == pytest.approx(0.973204, abs=1e-5)


def test_temperature_scales_scores() -> None:
    assert lse_pair(SCORES * 0.05, POSITIVES, temperature=0.05).item() == pytest.approx(1.067750, abs=1e-5)
    assert joint_lh(SCORES * 2, POSITIVES, temperature=2.0).item() == pytest.approx(1.658942, abs=1e-5)


def test_lse_pair_aggregations_match_their_definitions() -> None:
    row = SCORES[0]
    negatives = row[2:]
    weakest, strongest = row[:2].min(), row[:2].max()
    expected_min = torch.nn.functional.softplus(torch.logsumexp(negatives, 0) - weakest)
    expected_max = torch.nn.functional.softplus(torch.logsumexp(negatives, 0) - strongest)
    expected_hardest = torch.nn.functional.softplus(negatives.max() + torch.logsumexp(-row[:2], 0))
    assert lse_pair(SCORES[:1], POSITIVES[:1], positive_agg="min").item() == pytest.approx(expected_min.item())
    assert lse_pair(SCORES[:1], POSITIVES[:1], positive_agg="max").item() == pytest.approx(expected_max.item())
    assert lse_pair(SCORES[:1], POSITIVES[:1], negative_agg="max").item() == pytest.approx(expected_hardest.item())


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive_mask shape"):
        lse_pair(SCORES, POSITIVES[:, :3])
    with pytest.raises(ValueError, match="temperature"):
        joint_lh(SCORES, POSITIVES, temperature=0.0)
    with pytest.raises(ValueError, match="positive_agg"):
        lse_pair(SCORES, POSITIVES, positive_agg="mean")
    with pytest.raises(ValueError, match="at most one positive"):
        info_nce(SCORES, POSITIVES)
