"""The run manifest: ``mpretriever.json`` next to the weights of every saved model.

It is what indexing, the Haystack components and evaluation read to know the model's dimension, pooling,
similarity and prefixes; nothing downstream guesses them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from mpretriever import __version__
from mpretriever.data.errors import DataFormatError

MANIFEST_NAME = "mpretriever.json"
FORMAT_VERSION = 1

Pooling = Literal["mean", "cls"]
Similarity = Literal["cosine", "dot"]


@dataclass
class EncoderConfig:
    """How texts become vectors and vectors become scores.

    ``query_max_length`` / ``passage_max_length`` are the tokens a text is cut to. In a run's manifest they are the
    lengths it was trained with (the defaults below are the training defaults); loading a run for inference keeps
    its passage length and reads queries up to the model's maximum sequence length unless given others
    (:meth:`mpretriever.model.BiEncoder.from_pretrained`).
    """

    pooling: Pooling = "mean"
    normalize: bool = True
    similarity: Similarity = "cosine"
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_length: int = 32
    passage_max_length: int = 128

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        if self.similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {self.similarity!r}")
        for name in ("query_max_length", "passage_max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class RunManifest:
    """Everything needed to use, compare and reproduce a trained model."""

    base_model: str
    dimension: int
    encoder: EncoderConfig
    loss: str | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    split: str | None = None
    label_filter: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    final_train_loss: float | None = None
    train_runtime_s: float | None = None
    train_samples: int | None = None
    dev_evaluation: dict[str, Any] | None = None
    """The dev curve of a run trained with a dev set (see :class:`mpretriever.training.dev_curve.DevCurve`)."""
    mpretriever_version: str = __version__
    format_version: int = FORMAT_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunManifest:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["encoder"] = EncoderConfig(**data["encoder"])
        return cls(**values)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> RunManifest:
        path = Path(directory) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataFormatError(path, f"invalid JSON: {error.msg}", line=error.lineno) from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            raise DataFormatError(path, f"not a valid mpretriever manifest: {error}") from None


def find_manifest(name_or_path: str | Path) -> RunManifest | None:
    """The manifest of a local model directory, or ``None`` for hub ids and plain models."""
    directory = Path(name_or_path)
    if (directory / MANIFEST_NAME).is_file():
        return RunManifest.load(directory)
    return None
