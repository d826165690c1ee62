"""Choosing ids by a stable hash: the same choice on every machine, for any input order, and an id once chosen
stays chosen when others are added (the dev queries held out of training, the queries ``mpr annotate`` samples)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def hash_sample(ids: Iterable[str], count: int, salt: str = "") -> list[str]:
    """The ``count`` ids first in the order of ``sha1(salt + id)``, returned sorted (all of them when fewer)."""
    ordered = sorted(set(ids), key=lambda value: hashlib.sha1((salt + value).encode("utf-8")).hexdigest())
    return sorted(ordered[:count])
