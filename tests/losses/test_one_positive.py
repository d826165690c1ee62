"""Property 1: with exactly one positive per row, every multi-positive objective equals InfoNCE."""

from __future__ import annotations

import pytest
import torch

from mpretriever.losses import info_nce, joint_lh, lse_pair, sum_marg_lh


def _one_positive_batch(seed: int, rows: int = 6, columns: int = 20) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(rows, columns, generator=generator) * 3
    positive_mask = torch.zeros(rows, columns, dtype=torch.bool)
    positive_mask[torch.arange(rows), torch.randint(columns, (rows,), generator=generator)] = True
    ignore_mask = (torch.rand(rows, columns, generator=generator) < 0.2) & ~positive_mask
    return scores, positive_mask, ignore_mask


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("use_ignore", [False, True])
@pytest.mark.parametrize(
    "loss",
    [
        joint_lh,
        sum_marg_lh,
        lse_pair,
        lambda *a, **k: joint_lh(*a, normalize=True, **k),
        lambda *a, **k: lse_pair(*a, normalize=True, **k),
    ],
    ids=["jointlh", "summarglh", "lsepair", "jointlh-normalize", "lsepair-normalize"],
)
def test_equals_info_nce(seed: int, use_ignore: bool, loss) -> None:
    scores, positive_mask, ignore_mask = _one_positive_batch(seed)
    ignore = ignore_mask if use_ignore else None
    expected = info_nce(scores, positive_mask, ignore, temperature=0.5)
    assert loss(scores, positive_mask, ignore, temperature=0.5).item() == pytest.approx(expected.item(), rel=1e-5)


def test_info_nce_is_cross_entropy() -> None:
    scores, positive_mask, _ = _one_positive_batch(11)
    targets = positive_mask.float().argmax(dim=1)
    expected = torch.nn.functional.cross_entropy(scores, targets)
    assert info_nce(scores, positive_mask).item() == pytest.approx(expected.item(), rel=1e-6)
