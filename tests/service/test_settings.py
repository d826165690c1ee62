"""ServiceSettings from environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.index import QdrantSettings
from mpretriever.pipelines import PIPELINES_DIR_ENV
from mpretriever.service.settings import ServiceSettings, listen_address_from_env
from tests.conftest import REPO_ROOT


def test_defaults_when_nothing_is_set() -> None:
    assert ServiceSettings.from_env({}) == ServiceSettings()
    assert ServiceSettings.from_env({"MPR_COLLECTION": " ", "MPR_THREADS": ""}) == ServiceSettings()
    settings = ServiceSettings()
    assert settings.qdrant == QdrantSettings() and settings.collection == "nfcorpus"
    assert settings.rag_pipeline == "rag.yml" and settings.threads == 4
    assert (settings.generation_queue, settings.max_request_bytes) == (8, 65536)
    assert (settings.max_filter_conditions, settings.max_filter_depth) == (100, 5)


def test_every_variable() -> None:
    settings = ServiceSettings.from_env(
        {
            "MPR_COLLECTION": "scifact",
            "MPR_QDRANT_URL": "http://qdrant:6333",
            "QDRANT_API_KEY": "secret-key",
            "MPR_QDRANT_TIMEOUT": "3",
            "MPR_MODEL": "runs/x",
            "MPR_BACKEND": "onnx",
            "MPR_RAG_PIPELINE": "rag-openai.yml",
            "MPR_RAG_OVERRIDES": "generator.model=my-model; generator.timeout=30",
            "MPR_THREADS": "8",
            "MPR_GENERATION_QUEUE": "3",
            "MPR_MAX_REQUEST_BYTES": "1000",
            "MPR_MAX_FILTER_CONDITIONS": "7",
            "MPR_MAX_FILTER_DEPTH": "2",
        }
    )
    assert settings.qdrant == QdrantSettings(url="http://qdrant:6333", api_key="secret-key", timeout=3)
    assert (settings.collection, settings.model, settings.backend, settings.threads) == ("scifact", "runs/x", "onnx", 8)
    assert settings.rag_pipeline == "rag-openai.yml"
    assert settings.rag_overrides == {"generator.model": "my-model", "generator.timeout": 30}
    assert (settings.generation_queue, settings.max_request_bytes) == (3, 1000)
    assert (settings.max_filter_conditions, settings.max_filter_depth) == (7, 2)
    assert "secret-key" not in repr(settings)
    assert ServiceSettings.from_env({"MPR_RAG_PIPELINE": "None"}).rag_pipeline is None


@pytest.mark.parametrize(
    "environment, message",
    [
        ({"MPR_THREADS": "many"}, "MPR_THREADS must be an integer"),
        ({"MPR_THREADS": "0"}, "threads must be at least 1"),
        ({"MPR_QDRANT_TIMEOUT": "1.5"}, "MPR_QDRANT_TIMEOUT must be an integer"),
        ({"MPR_BACKEND": "cuda"}, "backend must be one of torch, onnx, onnx-int8"),
        ({"MPR_RAG_OVERRIDES": "model=x"}, r"component\.parameter=value"),
        ({"MPR_MAX_REQUEST_BYTES": "64k"}, "MPR_MAX_REQUEST_BYTES must be an integer"),
        ({"MPR_MAX_FILTER_CONDITIONS": "0"}, "max_filter_conditions must be at least 1"),
        ({"MPR_MAX_FILTER_DEPTH": "-1"}, "max_filter_depth must be at least 1"),
        ({"MPR_GENERATION_QUEUE": "0"}, "generation_queue must be at least 1"),
    ],
)
def test_bad_values_are_clear_errors(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceSettings.from_env(environment)


def test_rag_pipeline_is_a_name_in_the_pipelines_directory_or_a_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PIPELINES_DIR_ENV, raising=False)
    assert ServiceSettings().rag_pipeline_path() == REPO_ROOT / "pipelines" / "rag.yml"
    assert ServiceSettings(rag_pipeline=None).rag_pipeline_path() is None
    own = tmp_path / "mine.yml"
    own.write_text("components: {}\n")
    assert ServiceSettings(rag_pipeline=str(own)).rag_pipeline_path() == own
    monkeypatch.setenv(PIPELINES_DIR_ENV, str(tmp_path))
    assert ServiceSettings(rag_pipeline="mine.yml").rag_pipeline_path() == own
    with pytest.raises(FileNotFoundError, match=PIPELINES_DIR_ENV):
        ServiceSettings().rag_pipeline_path()


def test_the_listening_address() -> None:
    assert listen_address_from_env({}) == ("127.0.0.1", 8000)
    assert listen_address_from_env({"MPR_HOST": "0.0.0.0", "MPR_PORT": "9000"}) == ("0.0.0.0", 9000)
    with pytest.raises(ValueError, match="MPR_PORT must be an integer"):
        listen_address_from_env({"MPR_PORT": "http"})
