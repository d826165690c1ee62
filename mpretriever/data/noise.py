"""Controlled label noise, for measuring how an objective copes with wrong positives (the paper's noise study).

:func:`inject_label_noise` replaces a share of each query's positives with false positives: random passages of
the corpus, or *hard* ones (passages a retriever ranks high for the query, e.g. from ``mpr mine``, which look
relevant and are the realistic failure of an LLM annotator). The positives are those of the training's
:class:`~mpretriever.data.examples.LabelFilter`; every other judgement is kept, so that training with the same
filter still ignores it. Replaced true positives are dropped from the qrels (they become unlabelled, as missed
labels are); false positives carry the grade of the positive they replace and the source ``"noise"``, so runs can
tell them apart. Seeded: the same seed gives the same noise.

Write the result with :func:`write_qrels` and train on it with ``mpr train --qrels FILE``.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Literal

from mpretriever.data.beir import Judgement, Qrels
from mpretriever.data.examples import LabelFilter
from mpretriever.files import atomic_file

NoiseKind = Literal["random", "hard"]
NOISE_SOURCE = "noise"
EVERY_POSITIVE = LabelFilter()  # grade 1 or more, from any source


def inject_label_noise(
    qrels: Qrels,
    share: float,
    corpus_ids: Sequence[str],
    kind: NoiseKind = "random",
    hard_candidates: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    also_judged: Mapping[str, Collection[str]] | None = None,
    label_filter: LabelFilter = EVERY_POSITIVE,
) -> Qrels:
    """Replace ``round(share * m)`` of the ``m`` positives of every query under ``label_filter`` with false
    positives; the query's other judgements (grade 0, below the minimum grade, other sources) are kept.

    ``kind="random"`` draws them uniformly from ``corpus_ids``; ``kind="hard"`` takes them in rank order from
    ``hard_candidates[query]`` (ranked passage ids), falling back to random ones when a query has too few. A
    false positive is never a passage judged for the query (at any grade), in ``qrels`` or in ``also_judged``
    (e.g. the judgements of other label files).
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    if kind not in ("random", "hard"):
        raise ValueError(f"kind must be 'random' or 'hard', got {kind!r}")
    if kind == "hard" and hard_candidates is None:
        raise ValueError("hard noise needs hard_candidates (ranked passages per query, e.g. from mpr mine)")
    noisy: Qrels = {}
    for query_id in sorted(qrels):
        judgements = qrels[query_id]
        rng = random.Random(f"{seed}|{query_id}")
        positives = sorted(doc_id for doc_id, judgement in judgements.items() if label_filter.positive((judgement,)))
        replaced = rng.sample(positives, round(share * len(positives)))
        kept = {doc_id: judgement for doc_id, judgement in judgements.items() if doc_id not in set(replaced)}
        ranked = list(hard_candidates.get(query_id, ())) if kind == "hard" and hard_candidates else []
        judged = set(judgements) | set((also_judged or {}).get(query_id, ()))
        fakes = _false_positives(len(replaced), judged, ranked, corpus_ids, rng)
        for original, fake in zip(replaced, fakes, strict=True):
            kept[fake] = Judgement(doc_id=fake, grade=judgements[original].grade, source=NOISE_SOURCE)
        noisy[query_id] = kept
    return noisy


def _false_positives(
    count: int, judged: set[str], ranked: Sequence[str], corpus_ids: Sequence[str], rng: random.Random
) -> list[str]:
    chosen: list[str] = []
    for doc_id in ranked:
        if len(chosen) == count:
            return chosen
        if doc_id not in judged and doc_id not in chosen:
            chosen.append(doc_id)
    available = len(set(corpus_ids) - judged - set(chosen))
    if available < count - len(chosen):
        raise ValueError(f"the corpus has too few unjudged passages ({available}) for {count} false positives")
    while len(chosen) < count:
        doc_id = corpus_ids[rng.randrange(len(corpus_ids))]
        if doc_id not in judged and doc_id not in chosen:
            chosen.append(doc_id)
    return chosen


def write_qrels(path: str | Path, qrels: Qrels) -> Path:
    """Write qrels as ``query-id<TAB>corpus-id<TAB>score<TAB>source`` with a header (the layout ``mpr train``
    reads), atomically."""
    path = Path(path)
    with atomic_file(path) as handle:
        handle.write("query-id\tcorpus-id\tscore\tsource\n")
        for query_id in sorted(qrels):
            for doc_id in sorted(qrels[query_id]):
                judgement = qrels[query_id][doc_id]
                handle.write(f"{query_id}\t{doc_id}\t{judgement.grade}\t{judgement.source}\n")
    return path
