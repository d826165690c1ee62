"""Gradient behaviour from the specification, and finite gradients in every masked corner case."""

from __future__ import annotations

import pytest
import torch

from mpretriever.losses import info_nce, joint_lh, lse_pair, sum_marg_lh

MULTI_POSITIVE = {
    "jointlh": joint_lh,
    "jointlh-normalize": lambda *a, **k: joint_lh(*a, normalize=True, **k),
    "summarglh": sum_marg_lh,
    "lsepair": lse_pair,
    "lsepair-normalize": lambda *a, **k: lse_pair(*a, normalize=True, **k),
    "lsepair-min-max": lambda *a, **k: lse_pair(*a, positive_agg="min", negative_agg="max", **k),
    "lsepair-max": lambda *a, **k: lse_pair(*a, positive_agg="max", **k),
}


def _grad(loss, scores: torch.Tensor, positive_mask, ignore_mask=None, **options) -> tuple[float, torch.Tensor]:
    scores = scores.clone().requires_grad_(True)
    value = loss(scores, positive_mask, ignore_mask, **options)
    value.backward()
    return value.item(), scores.grad


@pytest.mark.parametrize("name", MULTI_POSITIVE)
def test_finite_gradients_with_masks_ignored_columns_and_empty_rows(name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 10, generator=generator) * 20
    positive_mask = torch.zeros(4, 10, dtype=torch.bool)
    positive_mask[0, [0, 1, 2]] = True
    positive_mask[1, 3] = True
    positive_mask[3, [4, 5]] = True  # row 3: its positives and negatives below are all ignored except one
    ignore_mask = torch.zeros(4, 10, dtype=torch.bool)
    ignore_mask[0, [2, 7]] = True  # an ignored positive and an ignored negative
    ignore_mask[3, 5:] = True  # row 3 keeps positive 4 and negatives 0-3 only
    value, grad = _grad(MULTI_POSITIVE[name], scores, positive_mask, ignore_mask, temperature=0.05)
    assert torch.isfinite(torch.tensor(value))
    assert torch.isfinite(grad).all()
    assert grad[2].abs().sum() == 0, "a row without positives takes no part"
    assert grad[0, [2, 7]].abs().sum() == 0, "ignored columns receive no gradient"
    assert grad[3, 5:].abs().sum() == 0


@pytest.mark.parametrize("name", [*MULTI_POSITIVE, "infonce"])
def test_batch_without_positives_gives_zero_loss_that_backpropagates(name: str) -> None:
    loss = MULTI_POSITIVE.get(name, info_nce)
    scores = torch.randn(3, 5)
    value, grad = _grad(loss, scores, torch.zeros(3, 5, dtype=torch.bool))
    assert value == 0.0
    assert grad is not None and torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("name", MULTI_POSITIVE)
def test_row_without_negatives_is_finite(name: str) -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0]])
    positive_mask = torch.tensor([[True, True, False]])
    ignore_mask = torch.tensor([[False, False, True]])
    value, grad = _grad(MULTI_POSITIVE[name], scores, positive_mask, ignore_mask)
    assert torch.isfinite(torch.tensor(value)) and torch.isfinite(grad).all()


def test_ignore_wins_over_positive() -> None:
    scores = torch.tensor([[3.0, 1.0, 0.0, -1.0]])
    positive_mask = torch.tensor([[True, True, False, False]])
    ignore_mask = torch.tensor([[False, True, False, False]])
    expected = info_nce(scores[:, [0, 2, 3]], positive_mask[:, [0, 2, 3]])
    assert lse_pair(scores, positive_mask, ignore_mask).item() == pytest.approx(expected.item())


def test_half_precision_scores_stay_finite() -> None:
    scores = (torch.randn(4, 12) * 30).half()
    positive_mask = torch.zeros(4, 12, dtype=torch.bool)
    positive_mask[:, :3] = True
    for loss in MULTI_POSITIVE.values():
        value, grad = _grad(loss, scores, positive_mask, temperature=0.02)
        assert torch.isfinite(torch.tensor(value)) and torch.isfinite(grad.float()).all()


def test_lse_pair_gradient_matches_the_analysis() -> None:
    scores = torch.tensor([[2.0, 0.5, -0.3, 1.0, 0.2, -1.0, 0.8]])
    positive_mask = torch.tensor([[True, True, True, False, False, False, False]])
    _, grad = _grad(lse_pair, scores, positive_mask)
    positives, negatives = scores[0, :3], scores[0, 3:]
    z = torch.exp(negatives[:, None] - positives[None, :]).sum()
    w = z / (1 + z)
    torch.testing.assert_close(grad[0, 3:], w * torch.softmax(negatives, 0))
    torch.testing.assert_close(grad[0, :3], -w * torch.softmax(-positives, 0))
    total_push = -grad[0, :3].sum()
    assert 0 < total_push < 1, "LSEPair's total push on the positives stays below 1 per row"
    assert grad[0, 1:3].abs().min() > grad[0, 0].abs(), "the weakest positives get the largest push"


def test_lse_pair_total_push_below_one_for_random_rows() -> None:
    generator = torch.Generator().manual_seed(5)
    scores = torch.randn(64, 32, generator=generator, dtype=torch.float64) * 2
    positive_mask = torch.rand(64, 32, generator=generator) < 0.3
    positive_mask[:, 0] = True
    _, grad = _grad(lse_pair, scores, positive_mask)
    # the batch mean divides every row's gradient by the number of rows
    push_per_row = -(grad * positive_mask).sum(dim=1) * 64
    assert (push_per_row > 0).all() and (push_per_row < 1).all()
    assert (grad[positive_mask] <= 0).all(), "positives are only ever pushed up: they never compete"


def test_joint_lh_fixed_point_is_uniform_mass_over_positives() -> None:
    m = 3
    # positives share the mass equally, negatives have (numerically) none: p_p = 1/m
    scores = torch.tensor([[5.0, 5.0, 5.0, -60.0, -60.0]])
    positive_mask = torch.tensor([[True, True, True, False, False]])
    _, grad = _grad(joint_lh, scores, positive_mask)
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-6, rtol=0)

    # a positive above 1/m is pushed down (positive gradient), the others up
    scores = torch.tensor([[7.0, 5.0, 5.0, -60.0, -60.0]])
    _, grad = _grad(joint_lh, scores, positive_mask)
    p = torch.softmax(scores[0], 0)
    torch.testing.assert_close(grad[0], m * p - positive_mask[0].float())
    assert grad[0, 0] > 0 and grad[0, 1] < 0 and grad[0, 2] < 0


def test_sum_marg_lh_favours_the_strongest_positive() -> None:
    scores = torch.tensor([[3.0, 1.0, 0.0, 2.0, 0.5]])
    positive_mask = torch.tensor([[True, True, True, False, False]])
    _, grad = _grad(sum_marg_lh, scores, positive_mask)
    p = torch.softmax(scores[0], 0)
    pi = torch.softmax(scores[0, :3], 0)
    torch.testing.assert_close(grad[0, :3], -pi * (1 - p[:3].sum()))
    assert grad[0, 0] < grad[0, 1] < grad[0, 2] < 0, "the strongest positive gets the most push"
