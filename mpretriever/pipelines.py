"""Loading Haystack pipeline YAML that uses mpretriever components.

Haystack 3 refuses to import classes outside its deserialisation allowlist; ``load_pipeline`` allows
``mpretriever.*`` for that one call (the process-wide allowlist is left alone). Overrides (``"component.param"``
to a value) change init parameters before the components are built, e.g. ``{"retriever.collection": "scifact"}``.

The YAML files live in the repository's ``pipelines/`` directory; :func:`pipeline_file` finds one by name there
(a source checkout or editable install) or under ``$MPR_PIPELINES_DIR`` (e.g. a Docker image that copies them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from haystack import Pipeline

from mpretriever.data.errors import DataFormatError, read_yaml

ALLOWED_MODULES = ["mpretriever.*"]
PIPELINES_DIR_ENV = "MPR_PIPELINES_DIR"
SOURCE_PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"


def pipeline_file(name: str) -> Path:
    """The path of one of the project's pipeline files (``"rag.yml"``), from ``$MPR_PIPELINES_DIR`` if set,
    else the source checkout's ``pipelines/``."""
    directory = Path(os.environ[PIPELINES_DIR_ENV]) if os.environ.get(PIPELINES_DIR_ENV) else SOURCE_PIPELINES_DIR
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"pipeline file {path} not found: set {PIPELINES_DIR_ENV} to a directory holding the repository's "
            f"pipelines/ files, or pass the YAML file's path"
        )
    return path


def parse_override(text: str) -> tuple[str, Any]:
    """``"retriever.top_k=5"`` to ``("retriever.top_k", 5)``; the value is read as YAML (numbers, null, lists)."""
    key, separator, value = text.partition("=")
    if not separator or "." not in key:
        raise ValueError(f"override {text!r} must look like component.parameter=value")
    return key.strip(), yaml.safe_load(value)


def apply_overrides(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    components = definition.get("components", {})
    for key, value in overrides.items():
        name, _, parameter = key.partition(".")
        if name not in components:
            raise ValueError(f"override {key!r}: no component '{name}' (components: {', '.join(components)})")
        components[name].setdefault("init_parameters", {})[parameter] = value
    return definition


def load_pipeline(path: str | Path, overrides: dict[str, Any] | None = None) -> Pipeline:
    """Read a pipeline YAML file, apply ``overrides`` and build it (mpretriever components allowed)."""
    path = Path(path)
    definition = read_yaml(path)
    if not isinstance(definition, dict) or "components" not in definition:
        raise DataFormatError(path, "not a Haystack pipeline (no 'components' section)")
    return Pipeline.from_dict(apply_overrides(definition, overrides or {}), allowed_modules=ALLOWED_MODULES)
