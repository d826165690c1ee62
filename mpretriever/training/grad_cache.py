"""GradCache (Gao et al., 2021): the contrastive loss of a large batch at the memory cost of a small one.

1. Embed queries and passages chunk by chunk without autograd, remembering the random state before each chunk.
2. Compute the loss on the detached embeddings and its gradient with respect to them (cheap: a score matrix).
3. When the Trainer calls ``backward`` on the returned loss, re-embed each chunk with autograd under the same
   random state (so dropout draws the same masks) and back-propagate the cached embedding gradient through it.

Only one chunk's activations are alive at a time, so memory depends on the chunk size, not on the batch. The
gradients equal those of the uncached loss (up to float rounding), for every objective and mask, because step 2 is
the same loss function on the same embeddings. The re-embedding happens inside a hook on the loss, so the
Trainer's own backward (gradient accumulation scaling, mixed-precision loss scaling, ``accelerate``) stays in
charge: the hook receives its output gradient and scales the cached gradients by it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Features = dict[str, Any]
Embedder = Callable[[Features], Tensor]
"""Padded features to embeddings: an encoder, its DDP wrapper, or an adapter with an optional ``no_sync()``."""


@dataclass
class RandomState:
    """The CPU and CUDA generator states at one point, to replay a forward pass with the same dropout masks."""

    cpu: Tensor
    cuda: list[Tensor]

    @classmethod
    def capture(cls) -> RandomState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        return cls(torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from this state; the generators continue afterwards as if it had not run."""
        devices = list(range(len(self.cuda)))
        with torch.random.fork_rng(devices=devices, enabled=True):
            torch.set_rng_state(self.cpu)
            if self.cuda:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def split_features(features: Features, chunk_size: int) -> list[Features]:
    """Row chunks of a padded batch, each cut to its own longest sequence (less padding to compute). Values that
    are not tensors (a sentence-transformers ``task`` name) go to every chunk as they are."""
    rows = next(value for value in features.values() if isinstance(value, Tensor)).shape[0]
    chunks = []
    for start in range(0, rows, chunk_size):
        chunk = {
            key: value[start : start + chunk_size] if isinstance(value, Tensor) else value
            for key, value in features.items()
        }
        mask = chunk.get("attention_mask")
        if mask is not None and mask.dim() == 2 and mask.shape[1] > 0:
            length = int(mask.sum(dim=1).max().item())
            chunk = {
                key: value[:, :length] if isinstance(value, Tensor) and value.dim() == 2 else value
                for key, value in chunk.items()
            }
        chunks.append(chunk)
    return chunks


@dataclass
class CachedSide:
    """One side (queries or passages) of a GradCache step: its chunks, their random states and embeddings."""

    chunks: list[Features]
    states: list[RandomState]
    embeddings: Tensor

    @property
    def chunk_rows(self) -> list[int]:
        return [next(v for v in chunk.values() if isinstance(v, Tensor)).shape[0] for chunk in self.chunks]

    @classmethod
    def embed(cls, model: Embedder, features: Features, chunk_size: int) -> CachedSide:
        chunks = split_features(features, chunk_size)
        states, outputs = [], []
        with torch.no_grad():
            for chunk in chunks:
                states.append(RandomState.capture())
                outputs.append(model(chunk))
        return cls(chunks, states, torch.cat(outputs).requires_grad_())


def _no_sync(model: Embedder) -> AbstractContextManager[None]:
    """DDP's ``no_sync`` (on the wrapper, or offered by an adapter around one); nothing otherwise."""
    no_sync = getattr(model, "no_sync", None)
    return no_sync() if no_sync is not None else contextlib.nullcontext()


def backward_hook(
    model: Embedder,
    sides: Sequence[CachedSide],
    gradients: Sequence[Tensor],
    autocast: Callable[[], AbstractContextManager[None]],
) -> Callable[[Tensor], None]:
    """The hook that re-embeds every chunk with autograd and back-propagates its share of the cached gradient.

    Under DDP all but the last chunk run in ``no_sync``: the gradients accumulate locally and are averaged
    across processes once, with the last chunk's backward.
    """

    def hook(grad_output: Tensor) -> None:
        work = [
            (chunk, state, gradient_chunk)
            for side, gradient in zip(sides, gradients, strict=True)
            for chunk, state, gradient_chunk in zip(
                side.chunks, side.states, gradient.split(side.chunk_rows), strict=True
            )
        ]
        with torch.enable_grad():
            for position, (chunk, state, gradient_chunk) in enumerate(work):
                last = position == len(work) - 1
                with state.replay(), autocast(), contextlib.nullcontext() if last else _no_sync(model):
                    embeddings = model(chunk)
                    surrogate = (embeddings.float() * gradient_chunk.float()).sum() * grad_output
                    surrogate.backward()

    return hook
