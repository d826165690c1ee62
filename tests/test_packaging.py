"""The wheel holds every package and the pipeline files, and an installed wheel finds them without the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# what the wheel is built from (the Docker image's build context too, see .dockerignore)
BUILD_INPUTS = ("mpretriever", "pipelines", "pyproject.toml", "README.md", "LICENSE")


def test_the_wheel_ships_every_package_and_the_pipeline_files(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel offline (--no-build-isolation) needs setuptools")
    source = tmp_path / "source"
    for name in BUILD_INPUTS:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("mpretriever-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        pipelines = sorted((REPO_ROOT / "pipelines").glob("*.yml"))
        assert pipelines
        for path in pipelines:
            assert archive.read(f"mpretriever/_pipelines/{path.name}") == path.read_bytes()
        template = REPO_ROOT / "mpretriever" / "annotation" / "umbrela.jinja"
        assert archive.read("mpretriever/annotation/umbrela.jinja") == template.read_bytes()  # mpr annotate's prompt
        metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode()
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    packages = {path.relative_to(source).as_posix() for path in (source / "mpretriever").rglob("__init__.py")}
    assert packages <= names, f"pyproject.toml's package list misses {sorted(packages - names)}"

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True)
    environment = {key: value for key, value in os.environ.items() if key != "MPR_PIPELINES_DIR"}
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mpretriever.pipelines as p; print(p.__file__); print(p.pipeline_file('rag.yml'))",
        ],
        cwd=tmp_path,
        env={**environment, "PYTHONPATH": str(site)},
        check=True,
        capture_output=True,
        text=True,
    )
    module, rag = found.stdout.split()
    assert Path(module).is_relative_to(site), "the installed wheel, not the source checkout, was imported"
    assert Path(rag) == site / "mpretriever" / "_pipelines" / "rag.yml"
