"""Group building: positives first, negative slots, sampling with replacement, Rand1LH rotation."""

from __future__ import annotations

import pytest

from mpretriever.data import GroupBuilder, IndexedExample, PositivePolicy

EXAMPLE = IndexedExample(positives=(10, 11, 12, 13, 14), excluded=(20,))


def test_group_has_positives_first_and_at_least_one_negative() -> None:
    builder = GroupBuilder(corpus_size=100, group_size=4, max_positives=8)
    group = builder.build(EXAMPLE, index=0, epoch=0)
    assert len(group.passages) == 4
    assert set(group.passages[:3]) <= set(EXAMPLE.positives), "at most group_size - 1 positives"
    assert group.passages[3] not in EXAMPLE.positives
    assert group.row_positives == frozenset(EXAMPLE.positives)
    assert group.row_ignored == frozenset({20})


def test_random_negatives_are_never_labelled_passages() -> None:
    example = IndexedExample(positives=(0, 1), excluded=(2, 3))
    builder = GroupBuilder(corpus_size=6, group_size=8, max_positives=2)
    for epoch in range(20):
        negatives = builder.build(example, index=1, epoch=epoch).passages[2:]
        assert len(negatives) == 6 and set(negatives) <= {4, 5}


def test_hard_negatives_are_sampled_with_replacement_when_too_few() -> None:
    example = IndexedExample(positives=(0,), hard_negatives=(7, 8))
    group = GroupBuilder(corpus_size=100, group_size=6, max_positives=1).build(example, 0, 0)
    assert group.passages[0] == 0
    assert len(group.passages) == 6 and set(group.passages[1:]) <= {7, 8}
    many = IndexedExample(positives=(0,), hard_negatives=tuple(range(30, 60)))
    group = GroupBuilder(corpus_size=100, group_size=6, max_positives=1).build(many, 0, 0)
    assert len(set(group.passages[1:])) == 5, "without replacement when there are enough"


def test_rand1lh_rotates_through_every_positive_across_epochs() -> None:
    builder = GroupBuilder(corpus_size=100, group_size=4, policy=PositivePolicy.ONE_RANDOM, seed=3)
    m = len(EXAMPLE.positives)
    sampled = [builder.build(EXAMPLE, index=4, epoch=epoch).passages[0] for epoch in range(2 * m)]
    assert sorted(sampled[:m]) == sorted(EXAMPLE.positives), "each positive once in the first m epochs"
    assert sampled[m:] == sampled[:m]
    group = builder.build(EXAMPLE, index=4, epoch=0)
    assert group.row_positives == frozenset({sampled[0]})
    assert group.row_ignored == (frozenset(EXAMPLE.positives) - {sampled[0]}) | {20}, (
        "unsampled positives are ignored, never negatives"
    )
    assert sum(p in EXAMPLE.positives for p in group.passages) == 1


def test_multi_positive_windows_cover_all_positives() -> None:
    builder = GroupBuilder(corpus_size=100, group_size=3, max_positives=2, seed=1)
    seen = set()
    for epoch in range(3):
        seen |= set(builder.build(EXAMPLE, index=0, epoch=epoch).passages[:2])
    assert seen == set(EXAMPLE.positives)


def test_first_policy_always_uses_the_best_positive() -> None:
    builder = GroupBuilder(corpus_size=100, group_size=4, policy=PositivePolicy.FIRST)
    for epoch in range(4):
        group = builder.build(EXAMPLE, index=2, epoch=epoch)
        assert group.passages[0] == 10 and group.row_positives == frozenset({10})


def test_groups_are_deterministic_and_seed_dependent() -> None:
    a = GroupBuilder(corpus_size=1000, group_size=8, seed=1)
    b = GroupBuilder(corpus_size=1000, group_size=8, seed=1)
    c = GroupBuilder(corpus_size=1000, group_size=8, seed=2)
    assert a.build(EXAMPLE, 5, 2) == b.build(EXAMPLE, 5, 2)
    assert a.build(EXAMPLE, 5, 2) != c.build(EXAMPLE, 5, 2)


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="group_size must be at least 2"):
        GroupBuilder(corpus_size=10, group_size=1)
    with pytest.raises(ValueError, match="max_positives"):
        GroupBuilder(corpus_size=10, max_positives=0)
