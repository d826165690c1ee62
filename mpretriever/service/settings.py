"""The service's configuration, read from environment variables (documented in the repository's ``.env.example``).

- ``MPR_HOST``, ``MPR_PORT``: where the service listens (default 127.0.0.1, 8000).

- ``MPR_COLLECTION``: the Qdrant collection to search (default ``nfcorpus``).
- ``MPR_QDRANT_URL``: URL of a Qdrant server; unset: the embedded Qdrant in ``MPR_QDRANT_PATH``
  (default ``qdrant_data``).
- ``QDRANT_API_KEY``: API key of the Qdrant server.
- ``MPR_QDRANT_TIMEOUT``: seconds to wait for Qdrant (default 10).
- ``MPR_MODEL``: query encoder; unset: the model the collection was indexed with.
- ``MPR_BACKEND``: encoder backend, ``torch`` (default), ``onnx`` or ``onnx-int8``.
- ``MPR_RAG_PIPELINE``: the RAG pipeline whose prompt and generator write the answers: a file name in the
  pipelines directory (``rag.yml``, the default, or ``rag-openai.yml``), a path, or ``none`` (no answers).
- ``MPR_RAG_OVERRIDES``: ``;``-separated ``component.param=value`` overrides of that pipeline, e.g.
  ``generator.model=my-model``.
- ``MPR_THREADS``: threads running retrieval (default 4); answers are written on a thread of their own.
- ``MPR_GENERATION_QUEUE``: questions that may wait for the generator (default 8); more get a 503.
- ``MPR_MAX_REQUEST_BYTES``: largest request body (default 65536); a larger one gets a 413.
- ``MPR_MAX_FILTER_CONDITIONS``: most comparisons in one filter (default 100); more get a 422.
- ``MPR_MAX_FILTER_DEPTH``: deepest nesting of a filter, a lone comparison being 1 (default 5); deeper gets a 422.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from mpretriever.index.connection import DEFAULT_API_KEY_ENV, DEFAULT_QDRANT_PATH, DEFAULT_TIMEOUT_S, QdrantSettings
from mpretriever.model.backends import Backend
from mpretriever.pipelines import parse_override, pipeline_file

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_COLLECTION = "nfcorpus"
DEFAULT_RAG_PIPELINE = "rag.yml"
DEFAULT_THREADS = 4
DEFAULT_GENERATION_QUEUE = 8
DEFAULT_MAX_REQUEST_BYTES = 65536
DEFAULT_MAX_FILTER_CONDITIONS = 100
DEFAULT_MAX_FILTER_DEPTH = 5
NO_PIPELINE = "none"


@dataclass(frozen=True)
class ServiceSettings:
    """What the HTTP service serves. Server mode and embedded mode differ only in ``qdrant``."""

    qdrant: QdrantSettings = field(default_factory=QdrantSettings)
    collection: str = DEFAULT_COLLECTION
    model: str | None = None
    backend: Backend = "torch"
    rag_pipeline: str | None = DEFAULT_RAG_PIPELINE
    rag_overrides: dict[str, Any] = field(default_factory=dict)
    threads: int = DEFAULT_THREADS
    generation_queue: int = DEFAULT_GENERATION_QUEUE
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_filter_conditions: int = DEFAULT_MAX_FILTER_CONDITIONS
    max_filter_depth: int = DEFAULT_MAX_FILTER_DEPTH

    def __post_init__(self) -> None:
        if self.backend not in get_args(Backend):
            raise ValueError(f"backend must be one of {', '.join(get_args(Backend))}, got {self.backend!r}")
        for name in ("threads", "generation_queue", "max_request_bytes", "max_filter_conditions", "max_filter_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Settings from the environment variables of the module docstring (unset or empty: the default)."""
        env = {key: value for key, value in (os.environ if environ is None else environ).items() if value.strip()}
        overrides = [item for item in env.get("MPR_RAG_OVERRIDES", "").split(";") if item.strip()]
        return cls(
            qdrant=QdrantSettings(
                path=env.get("MPR_QDRANT_PATH", DEFAULT_QDRANT_PATH),
                url=env.get("MPR_QDRANT_URL"),
                api_key=env.get(DEFAULT_API_KEY_ENV),
                timeout=_integer(env, "MPR_QDRANT_TIMEOUT", DEFAULT_TIMEOUT_S),
            ),
            collection=env.get("MPR_COLLECTION", DEFAULT_COLLECTION),
            model=env.get("MPR_MODEL"),
            backend=env.get("MPR_BACKEND", "torch"),  # type: ignore[arg-type]  # checked in __post_init__
            rag_pipeline=rag_pipeline_setting(env.get("MPR_RAG_PIPELINE", DEFAULT_RAG_PIPELINE)),
            rag_overrides=dict(parse_override(item) for item in overrides),
            threads=_integer(env, "MPR_THREADS", DEFAULT_THREADS),
            generation_queue=_integer(env, "MPR_GENERATION_QUEUE", DEFAULT_GENERATION_QUEUE),
            max_request_bytes=_integer(env, "MPR_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES),
            max_filter_conditions=_integer(env, "MPR_MAX_FILTER_CONDITIONS", DEFAULT_MAX_FILTER_CONDITIONS),
            max_filter_depth=_integer(env, "MPR_MAX_FILTER_DEPTH", DEFAULT_MAX_FILTER_DEPTH),
        )

    def rag_pipeline_path(self) -> Path | None:
        """The RAG pipeline file: a name is looked up in the pipelines directory (``$MPR_PIPELINES_DIR``)."""
        if self.rag_pipeline is None:
            return None
        path = Path(self.rag_pipeline)
        return path if len(path.parts) > 1 or path.is_file() else pipeline_file(self.rag_pipeline)


def listen_address_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Where the service listens: ``MPR_HOST`` (default 127.0.0.1) and ``MPR_PORT`` (default 8000)."""
    env = {key: value for key, value in (os.environ if environ is None else environ).items() if value.strip()}
    return env.get("MPR_HOST", DEFAULT_HOST), _integer(env, "MPR_PORT", DEFAULT_PORT)


def rag_pipeline_setting(value: str) -> str | None:
    """``MPR_RAG_PIPELINE``'s value as ``ServiceSettings.rag_pipeline``: ``none`` turns generation off."""
    return None if value.strip().lower() == NO_PIPELINE else value


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {env[name]!r}") from None
