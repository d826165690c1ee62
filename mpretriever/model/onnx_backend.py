"""ONNX Runtime inference for the transformer of a :class:`BiEncoder`: faster encoding on CPUs.

Two backends besides PyTorch, for inference only (indexing, query embedding; training always runs in PyTorch):

* ``"onnx"``: the transformer exported with ``torch.onnx`` (dynamic batch and sequence axes) and run by ONNX
  Runtime in float32. An export whose token embeddings differ from PyTorch's by more than ``FLOAT_TOLERANCE``
  (1e-3, max absolute difference on probe texts) is refused; all-MiniLM-L6-v2 differs by 2.2e-6. On CPUs it is
  about as fast as PyTorch, so it mainly serves as the exact reference for the quantised graph and for deployments
  without torch.
* ``"onnx-int8"``: the same graph with the weights of every matrix multiplication quantised to int8 per output
  channel (ONNX Runtime's dynamic quantisation; activations quantised on the fly). About 1.6x the throughput of
  PyTorch on AVX2 CPUs, at the price of small embedding changes (cosine to the float32 embedding about 0.99; the
  agreement is measured at export and logged). Index and queries may use different backends: the vectors stay
  comparable, which ``benchmarks/index_and_query.py`` quantifies as retrieval quality.

Only the transformer is replaced, inside the sentence-transformers model: tokenisation, prompts, lengths, pooling
and normalisation stay the library's own, so ``encode_query`` / ``encode_document`` behave as before. Exports are
cached under ``$MPR_CACHE_DIR/onnx/<model fingerprint>/`` and written atomically, so concurrent processes and
interrupted exports never leave a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from mpretriever.cache import cache_dir
from mpretriever.model.backends import BACKENDS, Backend

if TYPE_CHECKING:
    from mpretriever.model.bi_encoder import BiEncoder

logger = logging.getLogger(__name__)

FLOAT_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"
REPORT_FILE = "export.json"
FLOAT_TOLERANCE = 1e-3  # largest |ONNX - PyTorch| token embedding accepted at export
INT8_MIN_COSINE = 0.95
PROBE_TEXTS = (
    "Statins lower the risk of heart disease in patients with high cholesterol.",
    "vitamin D",
    "A randomised trial of dietary fibre, whole grains and the incidence of colorectal cancer over ten years of "
    "follow-up in adults aged fifty and over.",
    "Does coffee raise blood pressure?",
)


class OnnxExportError(RuntimeError):
    """The model could not be exported to ONNX, or the export does not reproduce the PyTorch outputs."""


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxExportError(
            "the ONNX backends need onnxruntime, onnx and onnxscript: pip install 'mpretriever[onnx]'"
        ) from error
    return onnxruntime


class _LastHiddenState(nn.Module):
    """The exported function: token ids and mask in, token embeddings out (token types default to zeros)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state


class OnnxTransformerModel(nn.Module):
    """Stands in for the transformers model inside sentence-transformers' ``Transformer`` module.

    Called with the tokenizer's features, returns ``{"last_hidden_state": tensor}`` like a transformers model.
    """

    def __init__(self, session: Any, config: Any, backend: Backend, source: Path) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.backend = backend
        self.source = source
        self.input_names = [item.name for item in session.get_inputs()]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **_: Any) -> dict[str, Tensor]:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        arrays = {name: feeds[name].detach().cpu().numpy().astype(np.int64) for name in self.input_names}
        (hidden,) = self.session.run(None, arrays)
        return {"last_hidden_state": torch.from_numpy(hidden).to(input_ids.device)}

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, file={str(self.source)!r}"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and the quantiser's chatter (warnings, and INFO lines on the root logger)."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx"), logging.getLogger("torch.export")]
    levels = [item.level for item in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in loggers:
            item.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for item, level in zip(loggers, levels, strict=True):
                item.setLevel(level)


def export_directory(fingerprint: str) -> Path:
    return cache_dir("onnx", fingerprint)


def _probe_features(encoder: BiEncoder) -> dict[str, Tensor]:
    return encoder.pad(encoder.tokenize(list(PROBE_TEXTS), "passage"))


def _export_float(encoder: BiEncoder, target: Path) -> None:
    """Export the float32 graph into ``target`` (a fresh directory)."""
    features = _probe_features(encoder)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    module = _LastHiddenState(encoder.transformer.model).eval()
    try:
        with _quiet():
            torch.onnx.export(
                module,
                (features["input_ids"], features["attention_mask"]),
                str(target / FLOAT_FILE),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_shapes=shapes,
                dynamo=True,
                external_data=True,
                verbose=False,
            )
    except Exception as error:
        raise OnnxExportError(
            f"could not export {encoder.base_model} to ONNX ({type(error).__name__}: {error}); use the torch backend"
        ) from error


def _quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)


def _session(path: Path, threads: int | None) -> Any:
    onnxruntime = _require_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _compare(encoder: BiEncoder, session: Any) -> dict[str, float]:
    """How far the ONNX graph is from PyTorch on the probe texts: token-level max difference and the cosine of
    mean-pooled embeddings (padding masked out)."""
    features = _probe_features(encoder)
    with torch.inference_mode():
        reference = _LastHiddenState(encoder.transformer.model).eval()(
            features["input_ids"], features["attention_mask"]
        )
    onnx_model = OnnxTransformerModel(session, None, "onnx", Path())
    candidate = onnx_model(features["input_ids"], features["attention_mask"])["last_hidden_state"]
    mask = features["attention_mask"].unsqueeze(-1).to(reference.dtype)
    pooled_reference = (reference * mask).sum(1) / mask.sum(1)
    pooled_candidate = (candidate * mask).sum(1) / mask.sum(1)
    cosine = torch.nn.functional.cosine_similarity(pooled_reference, pooled_candidate, dim=-1)
    return {
        "max_abs_difference": float(((reference - candidate) * mask).abs().max()),
        "min_cosine": float(cosine.min()),
    }


def _build(encoder: BiEncoder, directory: Path) -> None:
    """Export, quantise and verify into a temporary sibling of ``directory``, then move it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    staging.chmod(0o755)
    try:
        logger.info("exporting %s to ONNX (once per model; cached in %s)", encoder.base_model, directory)
        _export_float(encoder, staging)
        float_check = _compare(encoder, _session(staging / FLOAT_FILE, None))
        if float_check["max_abs_difference"] > FLOAT_TOLERANCE:
            raise OnnxExportError(
                f"the ONNX export of {encoder.base_model} differs from PyTorch by "
                f"{float_check['max_abs_difference']:.2e} (tolerance {FLOAT_TOLERANCE}); use the torch backend"
            )
        _quantize_int8(staging / FLOAT_FILE, staging / INT8_FILE)
        int8_check = _compare(encoder, _session(staging / INT8_FILE, None))
        report = {
            "base_model": encoder.base_model,
            "torch": torch.__version__,
            "onnxruntime": _require_onnxruntime().__version__,
            "onnx": float_check,
            "onnx-int8": int8_check,
        }
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if directory.exists() and not (directory / REPORT_FILE).is_file():
            logger.warning("removing an incomplete ONNX export in %s", directory)
            shutil.rmtree(directory)
        try:
            os.replace(staging, directory)
        except OSError:
            if not (directory / REPORT_FILE).is_file():  # not another process's finished export
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_session(encoder: BiEncoder, backend: Backend, threads: int | None = None) -> tuple[Any, Path, dict[str, Any]]:
    """The ONNX Runtime session of ``backend`` for ``encoder`` (exported on first use), its file and the export
    report."""
    if backend not in ("onnx", "onnx-int8"):
        raise ValueError(f"not an ONNX backend: {backend!r} (choose from {', '.join(BACKENDS)})")
    _require_onnxruntime()
    directory = export_directory(encoder.fingerprint())
    if not (directory / REPORT_FILE).is_file():
        _build(encoder, directory)
    report = json.loads((directory / REPORT_FILE).read_text(encoding="utf-8"))
    path = directory / (FLOAT_FILE if backend == "onnx" else INT8_FILE)
    return _session(path, threads), path, report


def attach(encoder: BiEncoder, backend: Backend, threads: int | None = None) -> None:
    """Replace the encoder's transformer by its ONNX Runtime graph (in place). CPU only."""
    device = encoder.device
    if device.type != "cpu":
        raise ValueError(f"the ONNX backends run on the CPU, but the encoder is on {device}; use backend 'torch'")
    session, path, report = load_session(encoder, backend, threads)
    agreement = report[backend]
    if backend == "onnx-int8" and agreement["min_cosine"] < INT8_MIN_COSINE:
        logger.warning(
            "int8 quantisation changes %s's embeddings noticeably (cosine to float32 down to %.3f on the probe "
            "texts); prefer backend 'onnx' or 'torch' for this model",
            encoder.base_model,
            agreement["min_cosine"],
        )
    logger.debug("ONNX backend %s from %s (agreement with PyTorch: %s)", backend, path, agreement)
    transformer = encoder.transformer
    transformer.model = OnnxTransformerModel(session, transformer.model.config, backend, path)
