"""A data-parallel ``train()`` frees DDP's reducer before it leaves the process group it joined.

Freed after the group, the reducer is the group's last owner, and destroying a gloo group from there joins gloo's
threads while holding the GIL, which those threads may be waiting for: ``mpr train`` under torchrun hung at exit
once in CI that way. The order is checked deterministically, at the moment the group is destroyed.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from accelerate import PartialState
from torch.nn.parallel import DistributedDataParallel

from mpretriever.training.run import train
from tests.training.test_distributed import WORLD, free_port
from tests.training.test_training import _config


def worker(rank: int, beir: str, model_dir: str, output: str, port: int, record: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD)
    )
    torch.set_num_threads(1)
    destroy = PartialState.destroy_process_group
    seen: dict[str, object] = {}

    def recording_destroy(state: PartialState, group: object = None) -> None:
        seen["world_size"] = dist.get_world_size()
        seen["ddp_alive"] = any(isinstance(thing, DistributedDataParallel) for thing in gc.get_objects())
        destroy(state, group)

    PartialState.destroy_process_group = recording_destroy
    outcome = train(_config(Path(beir), Path(model_dir), Path(output), per_device_train_batch_size=2, max_steps=1))
    seen["steps"] = outcome.steps
    Path(f"{record}.{rank}").write_text(json.dumps(seen), encoding="utf-8")
    os._exit(0)  # the check is done; the test's verdict does not depend on the rest of the teardown


def test_ddp_is_freed_before_the_process_group_is_left(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "seen"
    arguments = (str(tiny_beir), str(tiny_model_dir), str(tmp_path / "run"), free_port(), str(record))
    mp.spawn(worker, args=arguments, nprocs=WORLD, join=True)
    for rank in range(WORLD):
        seen = json.loads(Path(f"{record}.{rank}").read_text(encoding="utf-8"))
        assert seen == {"world_size": WORLD, "ddp_alive": False, "steps": 1}, f"rank {rank}: {seen}"
