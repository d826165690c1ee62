"""How a Qdrant server lays a collection out: shards, replicas, vectors on disk, the HNSW graph, quantisation.

These are the settings that decide how far a collection scales (see the README's sizing guide). They are given when
the collection is created, and a collection's manifest records those that differ from Qdrant's defaults under
``"layout"``, so that a version built with another layout is a new version (``mpr index --alias``), and writing
into a collection built with another one is refused rather than silently keeping the old layout. An embedded
Qdrant keeps every vector in memory and searches exhaustively: it accepts the settings and ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from qdrant_client import models

LAYOUT_FIELD = "layout"
Quantization = Literal["none", "int8", "binary"]
QUANTIZATIONS: tuple[str, ...] = ("none", "int8", "binary")
INT8_QUANTILE = 0.99  # Qdrant's documented default: the extreme 1 % of values are clipped


@dataclass(frozen=True)
class CollectionLayout:
    """Server-side settings of a new collection; ``None`` / ``False`` / ``"none"`` leave Qdrant's default.

    :param shard_number: shards the collection is split into (Qdrant's default: one per node at creation).
    :param replication_factor: copies of each shard on different nodes (default 1).
    :param on_disk: keep the original vectors memory-mapped on disk instead of in RAM.
    :param hnsw_m: edges per node of the HNSW graph (default 16): more is more accurate, larger and slower to build.
    :param hnsw_ef_construct: candidates considered while building the graph (default 100).
    :param quantization: ``"int8"`` (scalar, 4x smaller, kept in RAM) or ``"binary"`` (32x smaller, for 1,024+
        dimensions of models that tolerate it); searches rescore with the original vectors.
    """

    shard_number: int | None = None
    replication_factor: int | None = None
    on_disk: bool = False
    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    quantization: Quantization = "none"

    def __post_init__(self) -> None:
        for name in ("shard_number", "replication_factor", "hnsw_ef_construct"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.hnsw_m is not None and self.hnsw_m < 0:
            raise ValueError(f"hnsw_m must be at least 0 (0 turns the graph off), got {self.hnsw_m}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> CollectionLayout:
        """The layout a manifest records (none recorded: Qdrant's defaults)."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in (record or {}).items() if key in known})

    def record(self) -> dict[str, Any]:
        """The settings that differ from Qdrant's defaults, as the manifest records them."""
        default = CollectionLayout()
        return {key: value for key, value in asdict(self).items() if value != getattr(default, key)}

    def is_default(self) -> bool:
        return not self.record()

    def create_arguments(self, dimension: int, distance: models.Distance) -> dict[str, Any]:
        """The keyword arguments of ``QdrantClient.create_collection`` for a collection of ``dimension``-d vectors."""
        arguments: dict[str, Any] = {
            "vectors_config": models.VectorParams(size=dimension, distance=distance, on_disk=self.on_disk or None)
        }
        if self.shard_number is not None:
            arguments["shard_number"] = self.shard_number
        if self.replication_factor is not None:
            arguments["replication_factor"] = self.replication_factor
        if self.hnsw_m is not None or self.hnsw_ef_construct is not None:
            arguments["hnsw_config"] = models.HnswConfigDiff(m=self.hnsw_m, ef_construct=self.hnsw_ef_construct)
        # the deprecated on_disk / always_ram rather than their successor memory=, which servers before 1.20
        # (the demo runs 1.19) do not know
        if self.quantization == "int8":
            arguments["quantization_config"] = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=INT8_QUANTILE, always_ram=True
                )
            )
        elif self.quantization == "binary":
            arguments["quantization_config"] = models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(always_ram=True)
            )
        return arguments

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.record().items()) or "Qdrant's defaults"


def recorded_layout(manifest: Mapping[str, Any] | None) -> CollectionLayout:
    """The layout a collection's manifest records."""
    return CollectionLayout.from_record((manifest or {}).get(LAYOUT_FIELD))


def layout_differs(stored: Mapping[str, Any] | None, requested: Mapping[str, Any]) -> bool:
    """Whether ``requested`` asks for a layout (any but Qdrant's default) that the collection whose manifest is
    ``stored`` was not built with. Asking for none accepts the collection as it is."""
    wanted = recorded_layout(requested)
    return not wanted.is_default() and wanted != recorded_layout(stored)


def with_layout(manifest: Mapping[str, Any], layout: CollectionLayout) -> dict[str, Any]:
    """``manifest`` recording ``layout`` (nothing when it is Qdrant's default, as in manifests written before
    layouts were recorded)."""
    recorded = {key: value for key, value in manifest.items() if key != LAYOUT_FIELD}
    if not layout.is_default():
        recorded[LAYOUT_FIELD] = layout.record()
    return recorded
