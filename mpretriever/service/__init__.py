"""The HTTP service: RAG over a Qdrant collection (``POST /query``, ``GET /health``, a web page at ``/``).

Run it with ``mpr serve`` or ``python -m mpretriever.service``; configure it with environment variables (see
:mod:`mpretriever.service.settings`). Needs the ``service`` extra (FastAPI, uvicorn).
"""

from mpretriever.service.app import QueryService, create_app, run_server
from mpretriever.service.settings import ServiceSettings

__all__ = ["QueryService", "ServiceSettings", "create_app", "run_server"]
