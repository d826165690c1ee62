"""Loading Haystack pipeline YAML that uses mpretriever components.

Loading imports code only through Haystack 3's deserialisation allowlist: ``load_pipeline`` adds
``mpretriever.*`` to Haystack's own modules for that one call (the process-wide allowlist is left alone; a user
who trusts more sets ``HAYSTACK_DESERIALIZATION_ALLOWLIST``). A type outside it, a module that is not installed or
a component refusing its parameters is a :class:`~mpretriever.data.errors.DataFormatError` with a one-line reason.
Overrides (``"component.param"`` to a value) change init parameters before the components are built, e.g.
``{"retriever.collection": "scifact"}``.

The project's pipeline files are the repository's ``pipelines/``; the wheel ships them as
``mpretriever/_pipelines`` (``pyproject.toml`` maps the directory there). :func:`pipeline_file` finds one by name
under ``$MPR_PIPELINES_DIR`` if set, else in the installed package, else in the source checkout.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mpretriever.data.errors import DataFormatError
from mpretriever.files import read_yaml

if TYPE_CHECKING:
    from haystack import Pipeline

ALLOWED_MODULES = ["mpretriever.*"]
PIPELINES_DIR_ENV = "MPR_PIPELINES_DIR"
PACKAGED_PIPELINES = "_pipelines"
SOURCE_PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"

# how Haystack's build errors name the component at fault
_COMPONENT_IN_MESSAGE = re.compile(r"\(name: '([^']+)'\)|deserialize component '([^']+)'")


def pipelines_directory() -> Path:
    """Where the project's pipeline files are: ``$MPR_PIPELINES_DIR``, else the installed package's copy, else the
    source checkout's ``pipelines/`` (a source checkout or an editable install)."""
    if os.environ.get(PIPELINES_DIR_ENV):
        return Path(os.environ[PIPELINES_DIR_ENV])
    packaged = resources.files("mpretriever") / PACKAGED_PIPELINES
    return Path(str(packaged)) if packaged.is_dir() else SOURCE_PIPELINES_DIR


def pipeline_file(name: str) -> Path:
    """The path of one of the project's pipeline files (``"rag.yml"``), see :func:`pipelines_directory`."""
    directory = pipelines_directory()
    path = directory / name
    if not path.is_file():
        available = ", ".join(sorted(item.name for item in directory.glob("*.yml"))) or "none"
        raise FileNotFoundError(
            f"pipeline file {path} not found (pipelines there: {available}): pass the YAML file's path, or set "
            f"{PIPELINES_DIR_ENV} to a directory holding it"
        )
    return path


def parse_override(text: str) -> tuple[str, Any]:
    """``"retriever.top_k=5"`` to ``("retriever.top_k", 5)``; the value is read as YAML (numbers, null, lists)."""
    key, separator, value = text.partition("=")
    if not separator or "." not in key:
        raise ValueError(f"override {text!r} must look like component.parameter=value")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"override {text!r}: the value is not valid YAML ({problem})") from None


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
    from haystack import Pipeline
    from haystack.core.errors import DeserializationError, PipelineError

    path = Path(path)
    definition = read_yaml(path)
    if not isinstance(definition, dict) or "components" not in definition:
        raise DataFormatError(path, "not a Haystack pipeline (no 'components' section)")
    try:
        return Pipeline.from_dict(apply_overrides(definition, overrides or {}), allowed_modules=ALLOWED_MODULES)
    except (DeserializationError, PipelineError) as error:
        raise DataFormatError(path, failure_reason(error)) from error


def failure_reason(error: BaseException) -> str:
    """One line for a Haystack error building or running a pipeline: the component at fault and the first line of
    the root cause (Haystack's messages run to many lines: component data, ways around the allowlist)."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    lines = str(root).strip().splitlines()
    reason = lines[0].strip() if lines else type(root).__name__
    if reason.endswith(":") and ". " in reason:  # the first line ends by announcing a list: drop that sentence
        reason = reason.rsplit(". ", 1)[0] + "."
    if "allowlist" in reason:
        reason += f" Pipeline files may use {', '.join(ALLOWED_MODULES)} and Haystack's own modules."
    component = getattr(error, "component_name", None)  # a PipelineRuntimeError's
    if component is None and (named := _COMPONENT_IN_MESSAGE.search(str(error))):
        component = named.group(1) or named.group(2)
    return f"component '{component}': {reason}" if component else reason
