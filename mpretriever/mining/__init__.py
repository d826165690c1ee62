"""Hard-negative mining: BM25 or dense candidates, filtered by labels, rank window and score margin.

``mine(MineConfig(...))`` is what ``mpr mine`` runs; the pieces (miners, selection, writer) are usable alone.
"""

from mpretriever.mining.base import Candidate, Miner, MiningQuery, Ranking
from mpretriever.mining.output import MinedQuery, write_negatives
from mpretriever.mining.run import METHODS, MineConfig, MiningOutcome, MiningStats, mine, mine_queries
from mpretriever.mining.selection import (
    Selection,
    SelectionConfig,
    margin_threshold,
    mining_queries,
    select_negatives,
)

__all__ = [
    "METHODS",
    "Candidate",
    "MineConfig",
    "MinedQuery",
    "Miner",
    "MiningOutcome",
    "MiningQuery",
    "MiningStats",
    "Ranking",
    "Selection",
    "SelectionConfig",
    "margin_threshold",
    "mine",
    "mine_queries",
    "mining_queries",
    "select_negatives",
    "write_negatives",
]
