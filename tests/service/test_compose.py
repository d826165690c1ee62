"""Static checks of the Docker demo (no Docker engine needed): the compose file is valid, every path it names
exists, every variable it reads is documented in .env.example, and nothing secret goes into the image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKER_COMPOSE = shutil.which("docker-compose")
VARIABLE = re.compile(r"\$\{(\w+)")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def documented_variables() -> set[str]:
    """Names set or shown commented out in .env.example."""
    return set(re.findall(r"^#?\s*(\w+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), flags=re.M))


def compose_config(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    env = {key: value for key, value in os.environ.items() if key != "QDRANT_API_KEY"} | environment
    command = [DOCKER_COMPOSE, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
    command += ["--env-file", str(ENV_EXAMPLE), "config", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.needs("docker-compose")
def test_docker_compose_accepts_the_file() -> None:
    result = compose_config("-q", QDRANT_API_KEY="test-key")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(compose_config(QDRANT_API_KEY="test-key").stdout)
    assert set(resolved["services"]) == {"qdrant", "init", "api"}
    for service in resolved["services"].values():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}"
            assert published.startswith("127.0.0.1:"), port


@pytest.mark.needs("docker-compose")
def test_docker_compose_refuses_to_start_without_a_qdrant_api_key() -> None:
    result = compose_config("-q")
    assert result.returncode != 0
    assert "QDRANT_API_KEY" in result.stderr


def test_services_images_and_order() -> None:
    services = compose()["services"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", services["qdrant"]["image"]), "a pinned Qdrant version"
    assert "healthcheck" in services["qdrant"]
    assert any(volume.startswith("qdrant_storage:") for volume in services["qdrant"]["volumes"])
    assert "qdrant_storage" in compose()["volumes"]
    assert services["init"]["image"] == services["api"]["image"]
    assert services["init"]["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["api"]["depends_on"]["qdrant"]["condition"] == "service_healthy"


def test_every_path_named_exists() -> None:
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = REPO_ROOT / build["context"]
        assert context.is_dir(), name
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), name
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (context / source).exists(), f"{dockerfile}: COPY {source}"
    assert ENV_EXAMPLE.is_file() and (REPO_ROOT / ".dockerignore").is_file()


def test_every_variable_is_documented_in_env_example() -> None:
    used = set(VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used, "the compose file reads its settings from the environment"
    assert used - documented_variables() == set()


def test_no_secret_reaches_the_image() -> None:
    assert "QDRANT_API_KEY=" not in {line.strip() for line in ENV_EXAMPLE.read_text().splitlines()}, "no key set"
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "API_KEY" not in dockerfile and "ARG " not in dockerfile
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[ignored.index("*") + 1 :] and "!.env" not in ignored, "the context is an allowlist without .env"
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert "USER mpr" in dockerfile and "MPR_PIPELINES_DIR=/app/pipelines" in dockerfile


def test_pipelines_the_image_serves_exist() -> None:
    environment = compose()["services"]["api"]["environment"]
    default = re.search(r":-([^}]+)\}", environment["MPR_RAG_PIPELINE"]).group(1)
    assert (REPO_ROOT / "pipelines" / default).is_file()
    assert Path(REPO_ROOT / "pipelines" / "rag-openai.yml").is_file()
