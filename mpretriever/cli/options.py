"""Options shared by several commands: the Qdrant connection, the encoder's inference backend and lengths."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from mpretriever.index.connection import DEFAULT_API_KEY_ENV, DEFAULT_QDRANT_PATH, DEFAULT_TIMEOUT_S
from mpretriever.model.backends import BACKENDS

QDRANT = "Qdrant connection"

QdrantPath = Annotated[
    str,
    typer.Option(help="Directory of the embedded (local) Qdrant; ':memory:' for RAM only.", rich_help_panel=QDRANT),
]
QdrantUrl = Annotated[
    str | None,
    typer.Option(
        help="URL of a Qdrant server (instead of --qdrant-path), e.g. http://localhost:6333.", rich_help_panel=QDRANT
    ),
]
ApiKeyEnv = Annotated[
    str,
    typer.Option(
        help="Environment variable holding the Qdrant API key (used with --qdrant-url).", rich_help_panel=QDRANT
    ),
]
QdrantTimeout = Annotated[int, typer.Option(min=1, help="Seconds to wait for Qdrant.", rich_help_panel=QDRANT)]


# One member per backend (torch, onnx, onnx_int8 = "onnx-int8"): typer offers an Enum's values as the choices.
EncoderBackend = Enum("EncoderBackend", {name.replace("-", "_"): name for name in BACKENDS}, type=str)


BackendOption = Annotated[
    EncoderBackend,
    typer.Option(
        help="Inference engine of the encoder: torch; or, on CPUs, onnx (ONNX Runtime, float32, same vectors) or "
        "onnx-int8 (int8 weights, ~1.5x faster, cosine ~0.99 to float32). The ONNX graph is exported once per "
        "model into $MPR_CACHE_DIR/onnx; needs pip install 'mpretriever\\[onnx]'.",
        case_sensitive=False,
    ),
]

ENCODER = "Encoder"
QueryMaxLength = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Cut queries to this many tokens. Default: the model's maximum sequence length (256 for the packaged "
        "all-MiniLM-L6-v2; a trained run keeps its base model's, not its training query length), or the query "
        "length a searched collection records. How many queries were cut is logged.",
        rich_help_panel=ENCODER,
    ),
]
PassageMaxLength = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Cut passages to this many tokens. Default: for a run mpr trained, the passage length it was trained "
        "and selected with (128 unless mpr train was told otherwise); for any other model its maximum sequence "
        "length (256 for the packaged all-MiniLM-L6-v2). How many passages were cut is logged.",
        rich_help_panel=ENCODER,
    ),
]

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_QDRANT_PATH",
    "DEFAULT_TIMEOUT_S",
    "ApiKeyEnv",
    "BackendOption",
    "EncoderBackend",
    "PassageMaxLength",
    "QdrantPath",
    "QdrantTimeout",
    "QdrantUrl",
    "QueryMaxLength",
]
