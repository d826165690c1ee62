"""The encoding pool's workers die with their parent, even when ``mpr index`` is killed with SIGKILL."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_WORDS, write_jsonl

WORKER_MARK = "spawn_main"  # multiprocessing's spawned children run ``... spawn_main(...) --multiprocessing-fork``
DOCUMENTS = 12_000  # six chunks: the first one's progress shows the workers encoding, with five chunks to go


def children(pid: int) -> list[int]:
    try:
        import psutil
    except ImportError:
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
        return pids
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def encoded_so_far(terminal: int, seen: bytearray) -> int:
    """Documents done according to the progress bar ``mpr index`` draws on its terminal (read so far)."""
    while select.select([terminal], [], [], 0.2)[0]:
        try:
            seen += os.read(terminal, 65536)
        except OSError:  # the other end closed
            break
    counts = re.findall(rb"(\d+)/" + str(DOCUMENTS).encode(), bytes(seen))
    return max(map(int, counts), default=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")
def test_workers_exit_when_mpr_index_is_killed(tiny_run: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "big"
    words = [" ".join(TINY_WORDS[n % 30 :] + TINY_WORDS[: n % 30]) for n in range(30)]
    write_jsonl(dataset / "corpus.jsonl", [{"_id": f"d{n}", "text": words[n % 30]} for n in range(DOCUMENTS)])
    command = [sys.executable, "-m", "mpretriever.cli", "index", "--data", str(dataset), "--model", str(tiny_run)]
    command += ["--qdrant-path", str(tmp_path / "qdrant"), "--workers", "2"]
    terminal, progress_end = pty.openpty()  # so that the progress bar is drawn while indexing runs
    parent = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=progress_end)
    os.close(progress_end)
    workers: list[int] = []
    seen = bytearray()
    try:
        deadline = time.monotonic() + 300
        while encoded_so_far(terminal, seen) == 0 and parent.poll() is None and time.monotonic() < deadline:
            pass
        workers = [pid for pid in children(parent.pid) if WORKER_MARK in command_line(pid)]
        workers = [pid for pid in workers if "resource_tracker" not in command_line(pid)]
        assert parent.poll() is None, f"mpr index ended before it could be killed: {seen.decode(errors='replace')}"
        assert len(workers) == 2, "mpr index does not encode with two worker processes"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(alive, workers)), "encoding workers outlived their killed parent"
    finally:
        os.close(terminal)
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
