"""``MPRDocumentEmbedder``: embeds Haystack ``Document``s with an mpretriever model, for indexing pipelines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from tqdm import tqdm

from mpretriever.data.beir import passage_text
from mpretriever.model.backends import Backend
from mpretriever.model.bi_encoder import BiEncoder


@component
class MPRDocumentEmbedder:
    """Adds an ``embedding`` to each document: its ``title`` meta field and content, embedded as a passage.

    The text is ``title + " " + content``, as ``mpr index`` and training embed BEIR passages, so a collection
    filled through a Haystack indexing pipeline matches one filled by ``mpr index``.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        title_field: str | None = "title",
        batch_size: int = 32,
        progress_bar: bool = True,
        device: str | None = None,
        backend: Backend = "torch",
        passage_max_length: int | None = None,
    ) -> None:
        """
        :param model: an mpretriever run, a sentence-transformers model or a hub id; ``None`` uses the packaged
            all-MiniLM-L6-v2.
        :param title_field: meta field embedded before the content (``None``: content only).
        :param batch_size: documents per forward pass.
        :param progress_bar: show a progress bar.
        :param device: torch device of the encoder (default: automatic).
        :param backend: inference engine: ``"torch"``, or on CPUs ``"onnx"`` (float32) or ``"onnx-int8"``
            (quantised, faster); see :mod:`mpretriever.model.onnx_backend`.
        :param passage_max_length: tokens a passage is cut to (default, as ``mpr index`` embeds them: a trained
            run's passage length, another model's maximum sequence length); how many were cut is logged.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if passage_max_length is not None and passage_max_length < 1:
            raise ValueError(f"passage_max_length must be positive, got {passage_max_length}")
        self.model = model
        self.title_field = title_field
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.device = device
        self.backend = backend
        self.passage_max_length = passage_max_length
        self._encoder: BiEncoder | None = None

    def warm_up(self) -> None:
        """Load the encoder. Idempotent."""
        if self._encoder is None:
            self._encoder = BiEncoder.from_pretrained(
                self.model, device=self.device, backend=self.backend, passage_max_length=self.passage_max_length
            )

    def _text(self, document: Document) -> str:
        title = str(document.meta.get(self.title_field) or "") if self.title_field else ""
        return passage_text(title, document.content or "")

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """
        :param documents: documents to embed; they are not modified.
        :returns: ``documents``: copies with ``embedding`` set.
        """
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError("MPRDocumentEmbedder expects a list of Documents")
        if self._encoder is None:
            self.warm_up()
        assert self._encoder is not None
        order = sorted(range(len(documents)), key=lambda i: len(self._text(documents[i])))
        embeddings: dict[int, list[float]] = {}
        batches = range(0, len(order), self.batch_size)
        with self._encoder.counting_truncation("passage"):
            for start in tqdm(batches, desc="Embedding documents", disable=not self.progress_bar):
                batch = order[start : start + self.batch_size]
                vectors = self._encoder.embed_texts([self._text(documents[i]) for i in batch], "passage")
                embeddings.update(zip(batch, vectors.float().cpu().tolist(), strict=True))
        return {"documents": [replace(d, embedding=embeddings[i]) for i, d in enumerate(documents)]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            model=self.model,
            title_field=self.title_field,
            batch_size=self.batch_size,
            progress_bar=self.progress_bar,
            device=self.device,
            backend=self.backend,
            passage_max_length=self.passage_max_length,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MPRDocumentEmbedder:
        return default_from_dict(cls, data)
