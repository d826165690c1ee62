"""Data-parallel training on 2 CPU processes (gloo): loss and gradients equal the single-process ones on the
concatenated batch, with passages, positives and duplicates shared across processes, with and without GradCache."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mpretriever.data.masks import batch_columns, build_masks
from mpretriever.model import BiEncoder
from mpretriever.training.objectives import OBJECTIVES
from mpretriever.training.step import batch_loss
from tests.training.batches import GROUPS, collate, groups_for

TEMPERATURE = 0.05
WORLD = 2
CASES = [("lsepair", None), ("lsepair", 2), ("jointlh", None), ("summarglh", 3), ("rand1lh", None), ("rand1lh", 2)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_case(model, encoder: BiEncoder, objective: str, chunk: int | None, rows: slice) -> tuple[float, dict]:
    encoder.zero_grad(set_to_none=True)
    groups = groups_for(OBJECTIVES[objective].policy)
    inputs = collate(encoder, groups, rows=rows)
    loss = batch_loss(model, encoder, inputs, OBJECTIVES[objective].bind(), TEMPERATURE, grad_cache_chunk=chunk)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}


def worker(rank: int, model_dir: str, port: int, output: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=90))
    encoder = BiEncoder.from_pretrained(model_dir, normalize=True).eval()
    model = DistributedDataParallel(encoder, find_unused_parameters=True)  # what the Trainer does for it
    half = len(GROUPS) // WORLD
    rows = slice(rank * half, (rank + 1) * half)
    results = {}
    for objective, chunk in CASES:
        loss, gradients = run_case(model, encoder, objective, chunk, rows)
        total = torch.tensor([loss])
        dist.all_reduce(total)  # the Trainer logs the mean over processes
        results[(objective, chunk)] = (total.item() / WORLD, gradients)
    if rank == 0:
        torch.save(results, output)
    dist.barrier()
    # Leave without Python's teardown: destroying DDP's reducer and the gloo process group can deadlock on the GIL
    # (the group's worker thread releases finished work, which needs the GIL, while the main thread joins it).
    os._exit(0)


@pytest.fixture(scope="module")
def distributed_results(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("ddp") / "results.pt"
    mp.spawn(worker, args=(str(tiny_model_dir), free_port(), str(output)), nprocs=WORLD, join=True)
    return torch.load(output)


def test_the_batch_crosses_processes() -> None:
    """The fixture's batch needs the other process: a positive, an ignored passage and a duplicate sit there."""
    columns = batch_columns(GROUPS)
    half = len(GROUPS) // WORLD
    first_columns = batch_columns(GROUPS[:half])
    positive, ignore = build_masks(GROUPS, columns)
    local_positive, _ = build_masks(GROUPS[half:], columns[len(first_columns) :])
    assert positive[half:, : len(first_columns)].any()  # a positive of process 1's query on process 0
    assert ignore[:half, len(first_columns) :].any()
    assert local_positive.sum() < positive[half:].sum()


@pytest.mark.parametrize(("objective", "chunk"), CASES)
def test_two_processes_match_one(objective: str, chunk: int | None, distributed_results: dict, tiny_model_dir) -> None:
    encoder = BiEncoder.from_pretrained(tiny_model_dir, normalize=True).eval()
    expected_loss, expected = run_case(encoder, encoder, objective, None, slice(None))
    loss, gradients = distributed_results[(objective, chunk)]
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert gradients.keys() == expected.keys() and len(expected) > 10
    for name, gradient in expected.items():
        tolerance = 1e-4 * gradient.abs().max().item() + 1e-8
        assert (gradients[name] - gradient).abs().max().item() <= tolerance, name
