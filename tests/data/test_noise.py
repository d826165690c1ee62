"""Label noise: the share replaced, random and hard false positives, never a judged passage, seeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.data.beir import Judgement, load_qrels
from mpretriever.data.examples import LabelFilter
from mpretriever.data.noise import NOISE_SOURCE, inject_label_noise, write_qrels

CORPUS = [f"d{i}" for i in range(50)]
QRELS = {
    "q1": {f"d{i}": Judgement(f"d{i}", 2) for i in range(8)} | {"d40": Judgement("d40", 0)},
    "q2": {"d10": Judgement("d10", 1), "d11": Judgement("d11", 3)},
}


def positives(judgements) -> set[str]:
    return {doc_id for doc_id, judgement in judgements.items() if judgement.grade > 0}


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_share_of_positives_replaced_by_unjudged_random_passages(share: float) -> None:
    noisy = inject_label_noise(QRELS, share, CORPUS, seed=3)
    for query_id, judgements in QRELS.items():
        true, after = positives(judgements), positives(noisy[query_id])
        fakes = {d for d, j in noisy[query_id].items() if j.source == NOISE_SOURCE}
        assert len(after) == len(true)  # as many positives as before
        assert len(fakes) == round(share * len(true))  # q1: 0/2/4/8 of 8; q2: 0/0/1/2 of 2 (round half to even)
        assert not fakes & set(judgements)  # never a judged passage (d40, grade 0, included)
        assert after - fakes <= true
    assert noisy["q1"]["d40"].grade == 0


def test_hard_noise_takes_ranked_candidates_first_and_is_seeded() -> None:
    hard = {"q1": ["d3", "d20", "d40", "d21", "d22", "d23"], "q2": ["d30"]}  # d3 judged, d40 judged: skipped
    noisy = inject_label_noise(QRELS, 0.5, CORPUS, kind="hard", hard_candidates=hard, seed=1)
    assert {d for d, j in noisy["q1"].items() if j.source == NOISE_SOURCE} == {"d20", "d21", "d22", "d23"}
    assert {d for d, j in noisy["q2"].items() if j.source == NOISE_SOURCE} == {"d30"}
    fake = next(j for j in noisy["q2"].values() if j.source == NOISE_SOURCE)
    assert fake.grade in (1, 3)  # the grade of the positive it replaced
    assert inject_label_noise(QRELS, 0.5, CORPUS, seed=9) == inject_label_noise(QRELS, 0.5, CORPUS, seed=9)
    assert inject_label_noise(QRELS, 0.5, CORPUS, seed=9) != inject_label_noise(QRELS, 0.5, CORPUS, seed=10)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        inject_label_noise(QRELS, 1.5, CORPUS)
    with pytest.raises(ValueError, match="needs hard_candidates"):
        inject_label_noise(QRELS, 0.5, CORPUS, kind="hard")
    with pytest.raises(ValueError, match="too few unjudged"):
        inject_label_noise(QRELS, 1.0, CORPUS[:9])


def test_written_qrels_read_back_with_sources(tmp_path: Path) -> None:
    noisy = inject_label_noise(QRELS, 0.5, CORPUS, seed=2)
    path = write_qrels(tmp_path / "noisy.tsv", noisy)
    read = load_qrels(path, set(QRELS), set(CORPUS))
    assert read == noisy


def test_passages_judged_elsewhere_are_never_false_positives() -> None:
    small_corpus = [f"d{i}" for i in range(14)]  # q1 judges d0..d7; d8..d13 are the only unjudged ones
    also = {"q1": [f"d{i}" for i in range(8, 12)]}  # judged at a grade a filter dropped: only d12, d13 remain
    for seed in range(5):
        noisy = inject_label_noise({"q1": QRELS["q1"]}, 0.25, small_corpus, seed=seed, also_judged=also)
        assert {d for d, j in noisy["q1"].items() if j.source == NOISE_SOURCE} == {"d12", "d13"}
    hard = {"q1": ["d9", "d13", "d12"]}
    noisy = inject_label_noise({"q1": QRELS["q1"]}, 0.25, small_corpus, "hard", hard, also_judged=also)
    assert {d for d, j in noisy["q1"].items() if j.source == NOISE_SOURCE} == {"d13", "d12"}


def test_only_the_label_filters_positives_are_replaced_and_every_other_judgement_is_kept() -> None:
    qrels = {
        "q1": {f"d{i}": Judgement(f"d{i}", 3) for i in range(4)}
        | {"d4": Judgement("d4", 1), "d5": Judgement("d5", 2, "llm"), "d6": Judgement("d6", 3, "llm")}
    }
    human_strong = LabelFilter.from_options(3, ["human"])
    noisy = inject_label_noise(qrels, 0.5, CORPUS, seed=4, label_filter=human_strong)["q1"]
    fakes = {d for d, j in noisy.items() if j.source == NOISE_SOURCE}
    assert len(fakes) == 2 and not fakes & set(qrels["q1"])  # half of the 4 human grade-3 positives
    assert len({f"d{i}" for i in range(4)} - set(noisy)) == 2
    for kept in ("d4", "d5", "d6"):  # below the grade or of another source: still judged, so still ignored
        assert noisy[kept] == qrels["q1"][kept]
