"""``mpr serve``: the HTTP service (RAG over a Qdrant collection, with a web page) on uvicorn."""

from __future__ import annotations

from dataclasses import replace

import typer

from mpretriever.cli.options import QDRANT


def serve_command(
    host: str = typer.Option("127.0.0.1", envvar="MPR_HOST", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535, envvar="MPR_PORT", help="Port to listen on."),
    collection: str | None = typer.Option(None, help="Collection to search. Default: $MPR_COLLECTION or nfcorpus."),
    rag_pipeline: str | None = typer.Option(
        None,
        "--pipeline",
        help="RAG pipeline writing the answers: a file of the pipelines directory (rag.yml, rag-openai.yml), a path, "
        "or 'none'. Default: $MPR_RAG_PIPELINE or rag.yml.",
    ),
    threads: int | None = typer.Option(None, min=1, help="Threads for retrieval (generation has its own). Default: 4."),
    qdrant_path: str | None = typer.Option(
        None, help="Directory of the embedded Qdrant. Default: $MPR_QDRANT_PATH or qdrant_data.", rich_help_panel=QDRANT
    ),
    qdrant_url: str | None = typer.Option(
        None,
        help="URL of a Qdrant server (API key from $QDRANT_API_KEY). Default: $MPR_QDRANT_URL.",
        rich_help_panel=QDRANT,
    ),
) -> None:
    """Serve POST /query, GET /health and a web page at /; every setting also comes from the environment
    (see .env.example). Needs pip install -e ".\\[service]".

    Example: mpr serve --collection nfcorpus --qdrant-url http://localhost:6333
    """
    from mpretriever.service import ServiceSettings, run_server
    from mpretriever.service.settings import rag_pipeline_setting

    settings = ServiceSettings.from_env()
    if qdrant_path is not None or qdrant_url is not None:
        qdrant = replace(settings.qdrant, path=qdrant_path or settings.qdrant.path, url=qdrant_url)
        settings = replace(settings, qdrant=qdrant)
    if rag_pipeline is not None:
        settings = replace(settings, rag_pipeline=rag_pipeline_setting(rag_pipeline))
    if collection is not None:
        settings = replace(settings, collection=collection)
    if threads is not None:
        settings = replace(settings, threads=threads)
    settings.qdrant.check_exists()  # a mistyped --qdrant-path is refused, not created empty
    run_server(settings, host=host, port=port)
