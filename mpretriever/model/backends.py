"""The encoder's inference backends: PyTorch, or ONNX Runtime in float32 or int8 (see
:mod:`mpretriever.model.onnx_backend`). Light, so that the command line's options can name them."""

from __future__ import annotations

from typing import Literal, get_args

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
