"""Ranked hits and the order ``trec_eval`` ranks them in (no torch needed: evaluation code imports this)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import NamedTuple


class Hit(NamedTuple):
    """One retrieved document and its score under the model's similarity (higher is more similar)."""

    doc_id: str
    score: float


def float32(value: float) -> float:
    """``value`` rounded to single precision, the precision ``trec_eval`` keeps scores in."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:  # beyond float32's range: trec_eval's float is infinite there
        return math.copysign(math.inf, value)


def trec_order(hits: Sequence[tuple[str, float]]) -> list[Hit]:
    """``hits`` sorted as ``trec_eval`` ranks them: score (as float32) descending, then document id descending.

    ``trec_eval`` ignores the rank column of a run and re-sorts every query this way (``comp_sim_docno`` in its
    ``form_res_rels.c``); ranking the same way keeps a list cut at rank k, the ranks written to a run file and the
    ranks ``trec_eval`` scores in agreement when scores tie.
    """
    ordered = sorted((Hit(doc_id, score) for doc_id, score in hits), key=lambda hit: hit.doc_id, reverse=True)
    ordered.sort(key=lambda hit: float32(hit.score), reverse=True)  # stable: ties keep the descending ids
    return ordered
