"""Request and response bodies of the HTTP API (pydantic models; FastAPI publishes them in the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from haystack import Document
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_TOP_K = 100
MAX_QUESTION_CHARS = 2000

FILTERS_DESCRIPTION = (
    'Haystack metadata filter, e.g. `{"field": "meta.title", "operator": "==", "value": "Statins"}` or '
    '`{"operator": "AND", "conditions": [...]}`. Fields: `id`, `content` and `meta.<name>`; a meta field no '
    "document has matches nothing. At most `MPR_MAX_FILTER_CONDITIONS` comparisons (default 100), nested at most "
    "`MPR_MAX_FILTER_DEPTH` deep (default 5)."
)


class QueryRequest(BaseModel):
    """A question to answer from the collection."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "Does vitamin D protect against breast cancer?", "top_k": 5}]},
    )

    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description=f"Passages to return (1 to {MAX_TOP_K}).")
    filters: dict[str, Any] | None = Field(None, description=FILTERS_DESCRIPTION)
    generate: bool = Field(True, description="Write an answer from the best passages with the RAG generator.")


class Passage(BaseModel):
    """One retrieved passage, best first."""

    id: str
    score: float
    title: str | None
    content: str
    meta: dict[str, Any]

    @classmethod
    def from_document(cls, document: Document) -> Passage:
        return cls(
            id=str(document.id),
            score=float(document.score or 0.0),
            title=document.meta.get("title"),
            content=document.content or "",
            meta=document.meta,
        )


class QueryResponse(BaseModel):
    """The ranked passages and, when asked for and a generator is configured, the generated answer."""

    question: str
    passages: list[Passage]
    answer: str | None = Field(description="The generated answer; null when generation was not asked for or is off.")
    retrieval_ms: float
    generation_ms: float | None


class QdrantStatus(BaseModel):
    """The state of the Qdrant connection; ``detail`` says what is wrong, without paths or URLs."""

    mode: Literal["server", "embedded"] = Field(description="A Qdrant server or an embedded Qdrant directory.")
    reachable: bool
    collection: str
    serving: str | None = Field(
        None, description="The collection searched: `collection` itself, or the one the alias `collection` points at."
    )
    points: int | None = None
    detail: str | None = None


class HealthResponse(BaseModel):
    """``ok`` when Qdrant answers and the collection exists (HTTP 200), else ``unavailable`` (HTTP 503)."""

    status: str
    qdrant: QdrantStatus
    generator: str | None = Field(description="The RAG pipeline writing answers; null when generation is off.")
