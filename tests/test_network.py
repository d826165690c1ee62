"""Nothing leaves the machine unless the user asks: the entry points run in subprocesses whose socket layer records
(and refuses) every name lookup and connection to a non-loopback address."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.service.conftest import free_loopback_port

GUARD = """
import ipaddress, json, os, socket

_RECORD = os.environ["MPR_TEST_NETWORK_RECORD"]


def _write(kind, target):
    with open(_RECORD, "a", encoding="utf-8") as handle:
        handle.write(json.dumps([kind, str(target), os.getpid()]) + "\\n")


def _is_loopback(host):
    if host is None or host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_write("loaded", "", )
_getaddrinfo, _connect, _connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if not _is_loopback(host):
        _write("resolve", host)
        raise socket.gaierror(socket.EAI_NONAME, "refused by the test's network guard")
    return _getaddrinfo(host, *args, **kwargs)


def _guarded(original):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            _write("connect", address[0])
            raise ConnectionRefusedError("refused by the test's network guard")
        return original(self, address)
    return connect


socket.getaddrinfo = getaddrinfo
socket.socket.connect = _guarded(_connect)
socket.socket.connect_ex = _guarded(_connect_ex)
"""


def guarded_environment(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes load the guard first; the user's own telemetry choice is left unset."""
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    record = tmp_path / "network.jsonl"
    environment = {key: value for key, value in os.environ.items() if key != "HAYSTACK_TELEMETRY_ENABLED"}
    for offline in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        environment.pop(offline, None)
    environment.update(
        PYTHONPATH=os.pathsep.join([str(site), str(REPO_ROOT)]), MPR_TEST_NETWORK_RECORD=str(record), **extra
    )
    return environment, record


def outside_attempts(record: Path) -> list[list]:
    entries = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert any(kind == "loaded" for kind, _, _ in entries), "the network guard was not loaded"
    return [entry for entry in entries if entry[0] != "loaded"]


def run_retrieval_pipeline(tiny_index: Path, tmp_path: Path, **extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    index = shutil.copytree(tiny_index, tmp_path / "qdrant")
    environment, record = guarded_environment(tmp_path, **extra)
    command = [
        *(sys.executable, "-m", "mpretriever.cli", "pipeline", "run", str(REPO_ROOT / "pipelines" / "retrieval.yml")),
        *("--query", "cancer cell diet", "--set", "retriever.collection=tiny"),
        *("--set", f"retriever.qdrant_path={index}", "--set", "retriever.top_k=2"),
    ]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    return result, record


def test_mpr_pipeline_run_connects_to_nothing_outside(tiny_index: Path, tmp_path: Path) -> None:
    result, record = run_retrieval_pipeline(tiny_index, tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"documents"' in result.stdout
    assert outside_attempts(record) == []


def test_a_user_who_turns_telemetry_on_is_respected(tiny_index: Path, tmp_path: Path) -> None:
    """The control: the guard does see Haystack's telemetry when the user asks for it."""
    result, record = run_retrieval_pipeline(tiny_index, tmp_path, HAYSTACK_TELEMETRY_ENABLED="True")
    assert result.returncode == 0, result.stderr
    assert any("posthog" in target for _, target, _ in outside_attempts(record))


@contextmanager
def served(settings: dict[str, str], environment: dict[str, str], cwd: Path) -> Iterator[str]:
    """``python -m mpretriever.service``, the container's entry point, configured by the environment as there."""
    port = free_loopback_port()
    environment = {**environment, **settings, "MPR_HOST": "127.0.0.1", "MPR_PORT": str(port)}
    command = [sys.executable, "-m", "mpretriever.service"]
    process = subprocess.Popen(command, env=environment, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the service exited: {process.stdout.read().decode(errors='replace')}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise AssertionError("the service did not become healthy in 180 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_served_query_connects_to_nothing_outside(tiny_index: Path, tmp_path: Path) -> None:
    index = shutil.copytree(tiny_index, tmp_path / "qdrant")
    environment, record = guarded_environment(tmp_path)
    settings = {"MPR_QDRANT_PATH": str(index), "MPR_COLLECTION": "tiny", "MPR_RAG_PIPELINE": "none"}
    with served(settings, environment, tmp_path) as url:
        response = httpx.post(f"{url}/query", json={"question": "cancer cell diet", "top_k": 2}, timeout=60)
    assert response.status_code == 200, response.text
    assert len(response.json()["passages"]) == 2
    assert outside_attempts(record) == []


@pytest.mark.parametrize("module", ["mpretriever", "mpretriever.haystack"])
def test_importing_the_library_switches_haystack_telemetry_off(module: str, tmp_path: Path) -> None:
    environment, _ = guarded_environment(tmp_path)
    probe = f"import {module}; from haystack.telemetry import _telemetry; print(_telemetry.telemetry is None)"
    result = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr
