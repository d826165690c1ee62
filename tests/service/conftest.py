"""The service on uvicorn in a background thread, on a free loopback port, against embedded Qdrant built from the
tiny fixtures: the code path of server mode, with other ``QdrantSettings``."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from haystack import Document

from mpretriever.index import QdrantSettings
from mpretriever.service import ServiceSettings, create_app

STARTUP_TIMEOUT_S = 60


class StubGenerator:
    """Answers with the question and the id of the best passage; records whether two calls ever overlapped."""

    name = "stub"

    def __init__(self) -> None:
        self.calls = 0
        self.overlapped = False
        self._running = threading.Event()

    def warm_up(self) -> None:
        pass

    def generate(self, question: str, documents: list[Document]) -> str:
        if self._running.is_set():
            self.overlapped = True
        self._running.set()
        try:
            self.calls += 1
            time.sleep(0.001)
            return f"stub answer to {question!r} from {documents[0].id if documents else 'nothing'}"
        finally:
            self._running.clear()


def free_loopback_port() -> int:
    """A port nothing listens on (bound, noted and closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread; yields its base URL and stops it afterwards."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            listener.close()
            raise RuntimeError("the service did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def copy_of(index: Path, directory: Path) -> Path:
    """A copy of an embedded Qdrant directory: one directory admits one client at a time."""
    return Path(shutil.copytree(index, directory / "qdrant"))


@pytest.fixture(scope="package")
def service_index(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared service's copy of the tiny index (collection 'tiny', 60 documents)."""
    return copy_of(tiny_index, tmp_path_factory.mktemp("service-qdrant"))


@pytest.fixture(scope="package")
def stub_generator() -> StubGenerator:
    return StubGenerator()


@pytest.fixture(scope="package")
def service_settings(service_index: Path) -> ServiceSettings:
    return ServiceSettings(qdrant=QdrantSettings(path=str(service_index)), collection="tiny", threads=4)


@pytest.fixture()
def private_settings(tiny_index: Path, tmp_path: Path) -> ServiceSettings:
    """Settings for a test's own service or search, on its own copy of the tiny index."""
    return ServiceSettings(qdrant=QdrantSettings(path=str(copy_of(tiny_index, tmp_path))), collection="tiny")


@pytest.fixture(scope="package")
def service_url(service_settings: ServiceSettings, stub_generator: StubGenerator) -> Iterator[str]:
    """The base URL of the service on the tiny collection, answering with :class:`StubGenerator`."""
    with serving(create_app(service_settings, generator=stub_generator)) as url:
        yield url
