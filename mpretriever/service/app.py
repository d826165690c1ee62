"""The FastAPI application: ``POST /query``, ``GET /health``, the web page at ``/`` and FastAPI's OpenAPI schema
(``/openapi.json``).

Retrieval and generation block, so they run in a thread pool of ``settings.threads`` threads; the generator is
shared and not thread-safe, so one lock serialises its calls while retrievals go on in parallel.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from mpretriever import __version__
from mpretriever.service.generation import AnswerGenerator, GenerationError, PipelineAnswerGenerator
from mpretriever.service.page import CONTENT_SECURITY_POLICY, INDEX_HTML
from mpretriever.service.schemas import MAX_TOP_K, HealthResponse, Passage, QueryRequest, QueryResponse
from mpretriever.service.search import CollectionSearch, InvalidFilterError, ServiceUnavailableError
from mpretriever.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

RETRY_AFTER_S = "2"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": f"Invalid request: empty question, top_k outside 1..{MAX_TOP_K}, malformed JSON or filter."},
    502: {"description": "The generator failed (e.g. the OpenAI-compatible endpoint is unreachable)."},
    503: {"description": "Qdrant is unreachable or the collection cannot be searched; retry later."},
}


class QueryService:
    """Retrieval plus optional generation; blocking methods, safe to call from many threads."""

    def __init__(self, settings: ServiceSettings, generator: AnswerGenerator | None) -> None:
        self.settings = settings
        self.generator = generator
        self.search = CollectionSearch(settings)
        self._generator_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the generator (errors are fatal) and connect to Qdrant (an outage is only logged)."""
        if self.generator is not None:
            self.generator.warm_up()
        try:
            self.search.connect()
        except ServiceUnavailableError as error:
            logger.warning("%s; the service answers 503 until it can connect", error)

    def answer(self, request: QueryRequest) -> QueryResponse:
        started = time.perf_counter()
        documents = self.search.search(request.question, request.top_k, request.filters)
        retrieved = time.perf_counter()
        answer, generation_ms = None, None
        if request.generate and self.generator is not None:
            with self._generator_lock:
                answer = self.generator.generate(request.question, documents)
            generation_ms = (time.perf_counter() - retrieved) * 1000
        return QueryResponse(
            question=request.question,
            passages=[Passage.from_document(document) for document in documents],
            answer=answer,
            retrieval_ms=(retrieved - started) * 1000,
            generation_ms=generation_ms,
        )

    def health(self) -> HealthResponse:
        qdrant = self.search.status()
        ok = qdrant.reachable and qdrant.detail is None
        generator = self.generator.name if self.generator is not None else None
        return HealthResponse(status="ok" if ok else "unavailable", qdrant=qdrant, generator=generator)

    def close(self) -> None:
        self.search.close()


def create_app(settings: ServiceSettings | None = None, *, generator: AnswerGenerator | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment, see :mod:`mpretriever.service.settings`).

    :param generator: writes the answers; by default the prompt and generator of ``settings.rag_pipeline``
        (none when that is ``None``). Tests inject a stub here.
    """
    settings = settings or ServiceSettings.from_env()
    if generator is None and (pipeline := settings.rag_pipeline_path()) is not None:
        generator = PipelineAnswerGenerator(pipeline, settings.rag_overrides)
    service = QueryService(settings, generator)
    executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="mpr-service")

    async def blocking(function: Callable[..., Result], *args: object) -> Result:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await blocking(service.warm_up)
        yield
        executor.shutdown(wait=True, cancel_futures=True)
        service.close()

    app = FastAPI(
        title="mpretriever",
        version=__version__,
        summary="Retrieval-augmented question answering over a Qdrant collection indexed by mpr index.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(InvalidFilterError)
    async def invalid_filter(request: Request, error: InvalidFilterError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(ServiceUnavailableError)
    async def unavailable(request: Request, error: ServiceUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    @app.exception_handler(GenerationError)
    async def generation_failed(request: Request, error: GenerationError) -> JSONResponse:
        logger.error("%s", error, exc_info=error.__cause__)
        return JSONResponse({"detail": str(error)}, status_code=502)

    @app.post(
        "/query",
        response_model=QueryResponse,
        responses=ERROR_RESPONSES,
        description=f"Retrieve the `top_k` (1 to {MAX_TOP_K}) best passages for the question and, with "
        "`generate`, write an answer from them.",
    )
    async def query(request: QueryRequest) -> QueryResponse:
        return await blocking(service.answer, request)

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """Whether Qdrant answers and how many points the collection holds; HTTP 503 when it cannot be searched."""
        report = await blocking(service.health)
        return JSONResponse(report.model_dump(), status_code=200 if report.status == "ok" else 503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}
        return HTMLResponse(INDEX_HTML, headers=headers)

    return app


def run_server(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
