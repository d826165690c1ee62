"""A multi-process pool for encoding on CPUs: one process per core, with one thread each, beats one process with
several threads. It is sentence-transformers' pool (``SentenceTransformer.start_multi_process_pool``), started
with workers that exit when their parent dies, even by ``kill -9``, instead of holding the model's memory."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from mpretriever.model.bi_encoder import BiEncoder

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
PARENT_POLL_S = 0.5


def default_workers(documents: int, backend: str = "torch") -> int:
    """Encoding processes worth starting: one per core on CPU-only machines for corpora large enough to repay
    the start-up (a few seconds per process), else one. The ONNX backends run in one process (ONNX Runtime uses
    every core itself)."""
    if backend != "torch" or torch.cuda.is_available() or documents < 2000:
        return 1
    return max(1, os.cpu_count() or 1)


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # a dead parent's children are re-parented (to init or a subreaper)
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _worker_bound_to_parent(
    parent_pid: int, device: str, model: SentenceTransformer, inputs: Queue, outputs: Queue
) -> None:
    """sentence-transformers' pool worker, with a watchdog thread that ends the process once its parent is gone:
    the worker waits on its queue forever otherwise, holding the model's memory.

    The worker's progress bars (disabled, but built all the same) share a thread lock: tqdm's default adds a
    named semaphore, which a worker stopped by ``terminate()`` never unlinks, so that the parent's exit warned
    "resource_tracker: There appear to be N leaked semaphore objects", one per worker."""
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="parent-watchdog", daemon=True).start()
    type(model)._multi_process_worker(device, model, inputs, outputs)


def _start_cpu_workers(model: SentenceTransformer, workers: int) -> dict[str, Any]:
    """What ``SentenceTransformer.start_multi_process_pool(["cpu"] * workers)`` starts, with workers that die with
    this process (see :func:`_worker_bound_to_parent`); stopped by ``stop_multi_process_pool``."""
    model.to("cpu")
    model.share_memory()
    context = multiprocessing.get_context("spawn")  # as sentence-transformers: torch does not survive a fork
    inputs, outputs = context.Queue(), context.Queue()
    processes = []
    for _ in range(workers):
        process = context.Process(
            target=_worker_bound_to_parent, args=(os.getpid(), "cpu", model, inputs, outputs), daemon=True
        )
        process.start()
        processes.append(process)
    return {"input": inputs, "output": outputs, "processes": processes}


@contextmanager
def cpu_pool(encoder: BiEncoder, workers: int) -> Iterator[dict[str, Any] | None]:
    """A multi-process encoding pool with one thread per process (``None`` for one worker)."""
    if workers <= 1:
        yield None
        return
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))  # read by torch when each spawned worker starts
    try:
        pool = _start_cpu_workers(encoder.model, workers)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield pool
    finally:
        encoder.model.stop_multi_process_pool(pool)
