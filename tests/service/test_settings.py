"""ServiceSettings from environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.index import QdrantSettings
from mpretriever.pipelines import PIPELINES_DIR_ENV
from mpretriever.service.settings import ServiceSettings
from tests.conftest import REPO_ROOT


def test_defaults_when_nothing_is_set() -> None:
    assert ServiceSettings.from_env({}) == ServiceSettings()
    assert ServiceSettings.from_env({"MPR_COLLECTION": " ", "MPR_THREADS": ""}) == ServiceSettings()
    settings = ServiceSettings()
    assert settings.qdrant == QdrantSettings() and settings.collection == "nfcorpus"
    assert settings.rag_pipeline == "rag.yml" and settings.threads == 4


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
        }
    )
    assert settings.qdrant == QdrantSettings(url="http://qdrant:6333", api_key="secret-key", timeout=3)
    assert (settings.collection, settings.model, settings.backend, settings.threads) == ("scifact", "runs/x", "onnx", 8)
    assert settings.rag_pipeline == "rag-openai.yml"
    assert settings.rag_overrides == {"generator.model": "my-model", "generator.timeout": 30}
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
