"""The FastAPI application: ``POST /query``, ``GET /health``, the web page at ``/`` and FastAPI's OpenAPI schema
(``/openapi.json``).

Retrieval and ``/health`` block, so they run in a thread pool of ``settings.threads`` threads. The generator is
shared and not thread-safe: it runs on a single thread of its own, so that answers being written never hold up
retrieval or ``/health``; at most ``settings.generation_queue`` questions wait for it, more get a 503.

Bodies over ``settings.max_request_bytes`` get a 413 before they are read; invalid requests a 422 saying what is
wrong without echoing the input; no error names where the store lives (see :mod:`mpretriever.service.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from haystack import Document
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpretriever import __version__
from mpretriever.service.errors import public_message
from mpretriever.service.generation import AnswerGenerator, GenerationError, PipelineAnswerGenerator
from mpretriever.service.page import CONTENT_SECURITY_POLICY, INDEX_HTML
from mpretriever.service.schemas import MAX_TOP_K, HealthResponse, Passage, QueryRequest, QueryResponse
from mpretriever.service.search import (
    CollectionSearch,
    InvalidFilterError,
    SearchFailedError,
    ServiceUnavailableError,
)
from mpretriever.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

RETRY_AFTER_S = "2"
SHOWN_NAME_CHARS = 40
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "The request body is over the limit (`MPR_MAX_REQUEST_BYTES`, default 64 KiB)."},
    422: {
        "description": f"Invalid request: empty question, top_k outside 1..{MAX_TOP_K}, malformed JSON, a malformed "
        "filter or one over the limits (`MPR_MAX_FILTER_CONDITIONS`, `MPR_MAX_FILTER_DEPTH`)."
    },
    502: {"description": "The generator failed, or Qdrant refused the search (e.g. vectors of another dimension)."},
    503: {"description": "Qdrant is unreachable, the collection cannot be searched or the generator is busy; retry."},
}


class GeneratorBusyError(RuntimeError):
    """Too many questions wait for the generator (HTTP 503)."""


class QueryService:
    """Retrieval plus optional generation; blocking methods, safe to call from many threads (``generate`` from
    one thread at a time)."""

    def __init__(self, settings: ServiceSettings, generator: AnswerGenerator | None) -> None:
        self.settings = settings
        self.generator = generator
        self.search = CollectionSearch(settings)

    def warm_up(self) -> None:
        """Load the generator and connect to Qdrant. A generator whose model is not installed turns generation
        off, other generator errors are fatal; a Qdrant outage is only logged."""
        if self.generator is not None:
            try:
                self.generator.warm_up()
            except (FileNotFoundError, ImportError) as error:
                logger.warning("generation is off (passages only): %s", error)
                self.generator = None
        with contextlib.suppress(ServiceUnavailableError):  # logged; requests get a 503 until it connects
            self.search.connect()

    def retrieve(self, request: QueryRequest) -> tuple[list[Document], float]:
        """The passages for ``request`` and the milliseconds it took."""
        started = time.perf_counter()
        documents = self.search.search(request.question, request.top_k, request.filters)
        return documents, (time.perf_counter() - started) * 1000

    def generate(self, question: str, documents: list[Document]) -> tuple[str, float]:
        """The answer and the milliseconds it took; generation must be on."""
        assert self.generator is not None
        started = time.perf_counter()
        answer = self.generator.generate(question, documents)
        return answer, (time.perf_counter() - started) * 1000

    def health(self) -> HealthResponse:
        qdrant = self.search.status()
        ok = qdrant.reachable and qdrant.detail is None
        generator = self.generator.name if self.generator is not None else None
        return HealthResponse(status="ok" if ok else "unavailable", qdrant=qdrant, generator=generator)

    def close(self) -> None:
        self.search.close()


class RequestSizeLimit:
    """ASGI middleware answering 413, with the limit, to a request whose body is over ``max_bytes``; the body is
    read (at most ``max_bytes`` of it) before the application sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message | None = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()
            message, body = body, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over the limit of {self.max_bytes} bytes (MPR_MAX_REQUEST_BYTES)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def validation_detail(error: dict[str, Any]) -> dict[str, Any]:
    """Where and what is wrong in a request, without the offending input (which may be huge or not encodable)."""
    message = error["msg"]
    if error["type"] == "json_invalid" and isinstance(reason := error.get("ctx", {}).get("error"), str):
        message = f"{message}: {reason}"
    return {"loc": [_shown(item) for item in error["loc"]], "msg": message, "type": error["type"]}


def _shown(location: str | int) -> str | int:
    """A field name from the request as it may be shown: escaped where not valid Unicode, and short."""
    if isinstance(location, int):
        return location
    text = location.encode(errors="backslashreplace").decode()
    return text if len(text) <= SHOWN_NAME_CHARS else text[: SHOWN_NAME_CHARS - 1] + "…"


def create_app(settings: ServiceSettings | None = None, *, generator: AnswerGenerator | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment, see :mod:`mpretriever.service.settings`).

    :param generator: writes the answers; by default the prompt and generator of ``settings.rag_pipeline``
        (none when that is ``None``). Tests inject a stub here.
    """
    settings = settings or ServiceSettings.from_env()
    if generator is None and (pipeline := settings.rag_pipeline_path()) is not None:
        generator = PipelineAnswerGenerator(pipeline, settings.rag_overrides)
    service = QueryService(settings, generator)
    retrieval_pool = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="mpr-service")
    generation_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mpr-generation")
    generation_admitted = 0  # questions running or waiting on generation_pool; counted on the event loop only

    async def blocking(pool: ThreadPoolExecutor, function: Callable[..., Result], *args: object) -> Result:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)

    async def generate(question: str, documents: list[Document]) -> tuple[str, float]:
        nonlocal generation_admitted
        if generation_admitted >= settings.generation_queue:
            raise GeneratorBusyError(
                f"the generator is busy with {generation_admitted} questions, the limit (MPR_GENERATION_QUEUE); "
                "retry later or ask with generate: false"
            )
        generation_admitted += 1
        try:
            return await blocking(generation_pool, service.generate, question, documents)
        finally:
            generation_admitted -= 1

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await blocking(retrieval_pool, service.warm_up)
        yield
        for pool in (generation_pool, retrieval_pool):
            pool.shutdown(wait=True, cancel_futures=True)
        service.close()

    app = FastAPI(
        title="mpretriever",
        version=__version__,
        summary="Retrieval-augmented question answering over a Qdrant collection indexed by mpr index.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [validation_detail(item) for item in error.errors()]}, status_code=422)

    @app.exception_handler(InvalidFilterError)
    async def invalid_filter(request: Request, error: InvalidFilterError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(ServiceUnavailableError)
    @app.exception_handler(GeneratorBusyError)
    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    @app.exception_handler(GenerationError)
    @app.exception_handler(SearchFailedError)
    async def upstream_failed(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, GenerationError):
            logger.error("%s", error, exc_info=error.__cause__)
        return JSONResponse({"detail": public_message(str(error))}, status_code=502)

    @app.post(
        "/query",
        response_model=QueryResponse,
        responses=ERROR_RESPONSES,
        description=f"Retrieve the `top_k` (1 to {MAX_TOP_K}) best passages for the question and, with "
        "`generate`, write an answer from them.",
    )
    async def query(request: QueryRequest) -> QueryResponse:
        documents, retrieval_ms = await blocking(retrieval_pool, service.retrieve, request)
        answer, generation_ms = None, None
        if request.generate and service.generator is not None:
            answer, generation_ms = await generate(request.question, documents)
        return QueryResponse(
            question=request.question,
            passages=[Passage.from_document(document) for document in documents],
            answer=answer,
            retrieval_ms=retrieval_ms,
            generation_ms=generation_ms,
        )

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> JSONResponse:
        """Whether Qdrant answers and how many points the collection holds; HTTP 503 when it cannot be searched."""
        report = await blocking(retrieval_pool, service.health)
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
