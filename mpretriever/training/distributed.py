"""Cross-process pieces of the loss: gathering passage embeddings (with gradients) and their corpus rows.

Under data parallelism (``torchrun`` / ``accelerate launch``; the Trainer wraps the model in
``DistributedDataParallel``), every process scores its own queries against the passages of *all* processes. The
gather keeps the autograd graph (its backward sums each process's gradient into the owner's slice), and the loss
is rescaled so that, after DDP averages the parameter gradients, they equal those of the single-process loss on
the concatenated batch. Without an initialised process group every function here is the identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def _sizes(rows: int, device: torch.device) -> list[int]:
    local = torch.tensor([rows], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(size.item()) for size in sizes]


def _pad_rows(tensor: Tensor, rows: int, value: float) -> Tensor:
    if tensor.shape[0] == rows:
        return tensor
    padding = tensor.new_full((rows - tensor.shape[0], *tensor.shape[1:]), value)
    return torch.cat([tensor, padding])


class _AllGather(torch.autograd.Function):
    """``all_gather`` of equally shaped tensors, stacked ``(world, ...)``; backward sums every process's gradient
    and returns this process's slice."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, gradient: Tensor) -> Tensor:
        gradient = gradient.contiguous()
        dist.all_reduce(gradient)
        return gradient[dist.get_rank()]


def gather_rows(tensor: Tensor, differentiable: bool) -> Tensor:
    """Concatenate ``tensor`` (rows may differ in number) from every process, in rank order.

    With ``differentiable`` the result stays in the autograd graph: the gradient reaching a row is summed over
    the processes whose losses used it and delivered to the process that owns the row.
    """
    if not is_distributed():
        return tensor
    sizes = _sizes(tensor.shape[0], tensor.device)
    padded = _pad_rows(tensor, max(sizes), -1 if not tensor.is_floating_point() else 0.0)
    if differentiable:
        parts = list(_AllGather.apply(padded))
    else:
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def all_sum(value: int, device: torch.device) -> int:
    """The sum of an integer over all processes."""
    if not is_distributed():
        return value
    total = torch.tensor([value], dtype=torch.long, device=device)
    dist.all_reduce(total)
    return int(total.item())
