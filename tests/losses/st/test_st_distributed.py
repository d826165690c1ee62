"""The sentence-transformers losses under DDP on 2 CPU processes (gloo): with ``gather_across_devices`` the loss and
gradients equal the single-process ones on the whole batch, with positives and negatives shared across processes."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mpretriever.losses.st import InfoNCELoss, JointLHLoss, LSEPairLoss, MultiPositiveDataCollator
from mpretriever.model import BiEncoder
from tests.losses.st.batches import assert_same, features, make_texts
from tests.losses.st.test_st_losses import multi_positive_rows
from tests.training.test_distributed import free_port

WORLD = 2
CASES = [(LSEPairLoss, None), (LSEPairLoss, 2), (JointLHLoss, None), (InfoNCELoss, 3)]


def rows() -> list[dict]:
    """Six queries, three per process; the last one's positive is the first one's too, and its negative is the
    second one's positive: both sit on the other process."""
    t = make_texts(40, seed=2)
    return [*multi_positive_rows(), {"query": t[23], "pos": [t[2], t[24]], "neg": [t[7]]}]


def run_case(loss_class, chunk: int | None, model, network, part: slice, gather: bool) -> tuple[float, dict]:
    network.zero_grad(set_to_none=True)
    loss = loss_class(model, mini_batch_size=chunk, gather_across_devices=gather)
    collator = MultiPositiveDataCollator(network.preprocess, policy=loss.policy, seed=5)
    value = loss(*features(collator(rows()[part])))
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in network.named_parameters() if p.grad is not None}


def worker(rank: int, model_dir: str, port: int, output: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=90))
    network = BiEncoder.from_pretrained(model_dir, normalize=True).model.eval()
    model = DistributedDataParallel(network, find_unused_parameters=True)  # what the Trainer gives the loss
    part = slice(rank * 3, (rank + 1) * 3)
    results = {}
    for loss_class, chunk in CASES:
        for gather in (True, False):
            loss, gradients = run_case(loss_class, chunk, model, network, part, gather)
            total = torch.tensor([loss])
            dist.all_reduce(total)
            results[(loss_class.__name__, chunk, gather)] = (total.item() / WORLD, gradients)
    if rank == 0:
        torch.save(results, output)
    dist.barrier()
    os._exit(0)  # see tests/training/test_distributed.py: Python's teardown of gloo can deadlock


@pytest.fixture(scope="module")
def distributed_results(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("st-ddp") / "results.pt"
    mp.spawn(worker, args=(str(tiny_model_dir), free_port(), str(output)), nprocs=WORLD, join=True)
    return torch.load(output)


@pytest.mark.parametrize(("loss_class", "chunk"), CASES, ids=lambda value: getattr(value, "__name__", str(value)))
def test_gathered_across_two_processes_equals_one(loss_class, chunk, distributed_results, tiny_model_dir) -> None:
    network = BiEncoder.from_pretrained(tiny_model_dir, normalize=True).model.eval()
    expected = run_case(loss_class, None, network, network, slice(None), gather=False)
    assert_same(distributed_results[(loss_class.__name__, chunk, True)], expected)


def test_without_gathering_each_process_sees_its_own_passages(distributed_results, tiny_model_dir) -> None:
    """The check that the gathered case can fail: without the other process's passages the loss differs."""
    network = BiEncoder.from_pretrained(tiny_model_dir, normalize=True).model.eval()
    expected = run_case(LSEPairLoss, None, network, network, slice(None), gather=False)
    alone = distributed_results[("LSEPairLoss", None, False)]
    assert abs(alone[0] - expected[0]) > 1e-4
