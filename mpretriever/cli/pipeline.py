"""``mpr pipeline run``: run a Haystack pipeline YAML file (retrieval, RAG, ...) on a query."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

logger = logging.getLogger(__name__)

pipeline_app = typer.Typer(help="Run Haystack pipelines defined in YAML (see pipelines/).", no_args_is_help=True)


def _printable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        data = value.to_dict()
        if isinstance(data, dict):
            data.pop("embedding", None)
        return data
    if hasattr(value, "text") and not isinstance(value, str):
        return value.text
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    return value


@pipeline_app.command("run", no_args_is_help=True)
def run_command(
    file: Path = typer.Argument(..., help="Pipeline YAML file, e.g. pipelines/rag.yml."),
    query: str = typer.Option(..., help="Given to every component input named 'query'."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Change an init parameter: component.param=value (value read as YAML). Repeatable."
    ),
) -> None:
    """Load a pipeline (mpretriever components allowed), run it on a query and print its outputs as JSON.

    Example: mpr pipeline run pipelines/retrieval.yml --query "statins" --set retriever.top_k=3
    """
    from haystack.core.errors import PipelineRuntimeError

    from mpretriever.pipelines import failure_reason, load_pipeline, parse_override

    pipeline = load_pipeline(file, dict(parse_override(item) for item in overrides))
    try:
        result = pipeline.run({"query": query})
    except PipelineRuntimeError as error:
        logger.debug("the pipeline failed", exc_info=True)
        reason = escape(f"{file}: {failure_reason(error)} (mpr --verbose shows the traceback)")
        Console(stderr=True).print(f"[bold red]error:[/] {reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        for name in pipeline.to_dict()["components"]:
            component = pipeline.get_component(name)
            if hasattr(component, "close"):
                component.close()
    Console().print_json(json.dumps(_printable(result), default=str, ensure_ascii=False))
