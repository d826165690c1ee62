"""MPRDocumentEmbedder: contract, and embeddings equal to mpretriever's passage embeddings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from haystack import Document, Pipeline

from mpretriever.haystack import MPRDocumentEmbedder
from mpretriever.model import BiEncoder
from mpretriever.pipelines import ALLOWED_MODULES


def test_to_dict() -> None:
    assert MPRDocumentEmbedder(model="runs/x", batch_size=8).to_dict() == {
        "type": "mpretriever.haystack.document_embedder.MPRDocumentEmbedder",
        "init_parameters": {
            "model": "runs/x",
            "title_field": "title",
            "batch_size": 8,
            "progress_bar": True,
            "device": None,
            "backend": "torch",
            "passage_max_length": None,
        },
    }
    assert MPRDocumentEmbedder(passage_max_length=64).to_dict()["init_parameters"]["passage_max_length"] == 64


def test_from_dict() -> None:
    embedder = MPRDocumentEmbedder.from_dict(
        {
            "type": "mpretriever.haystack.document_embedder.MPRDocumentEmbedder",
            "init_parameters": {"model": "m", "title_field": None, "batch_size": 4, "passage_max_length": 64},
        }
    )
    assert (embedder.model, embedder.title_field, embedder.batch_size) == ("m", None, 4)
    assert embedder.passage_max_length == 64 and embedder._encoder is None
    with pytest.raises(ValueError, match="passage_max_length must be positive"):
        MPRDocumentEmbedder(passage_max_length=0)


def test_run_embeds_title_and_content_in_input_order(tiny_run: Path) -> None:
    documents = [
        Document(content="coffee tea sleep brain " * 10, meta={"title": "Coffee"}),
        Document(content="heart", meta={}),
        Document(content="fish milk egg", meta={"title": "Food"}),
    ]
    embedder = MPRDocumentEmbedder(model=str(tiny_run), batch_size=2, progress_bar=False)
    embedder.warm_up()
    encoder = embedder._encoder
    embedder.warm_up()
    assert embedder._encoder is encoder
    result = embedder.run(documents)["documents"]
    assert [d.id for d in result] == [d.id for d in documents]
    assert all(d.embedding is None for d in documents), "inputs are not modified"
    expected = BiEncoder.from_pretrained(tiny_run).embed_texts(
        ["Coffee " + documents[0].content.strip(), "heart", "Food fish milk egg"], "passage"
    )
    torch.testing.assert_close(torch.tensor([d.embedding for d in result]), expected, atol=1e-5, rtol=1e-4)


def test_passages_are_embedded_whole_by_default_and_cut_ones_counted(
    tiny_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    documents = [Document(content="coffee tea sleep brain " * 20), Document(content="heart"), Document(content="tea")]
    caplog.set_level(logging.INFO, logger="mpretriever.model.bi_encoder")
    embedder = MPRDocumentEmbedder(model=str(tiny_run), batch_size=2, progress_bar=False)
    embedder.warm_up()
    assert embedder._encoder is not None and embedder._encoder.config.passage_max_length == 128
    whole = embedder.run(documents)["documents"]
    assert not caplog.records  # 82 tokens: within the tiny BERT's maximum, 128
    shorter = MPRDocumentEmbedder(model=str(tiny_run), batch_size=2, progress_bar=False, passage_max_length=4)
    cut = shorter.run(documents)["documents"]
    assert [r.getMessage() for r in caplog.records] == ["1 of 3 passages longer than 4 tokens was truncated"]
    assert whole[0].embedding != cut[0].embedding and whole[1].embedding == pytest.approx(cut[1].embedding)


def test_run_rejects_non_documents(tiny_run: Path) -> None:
    with pytest.raises(TypeError, match="list of Documents"):
        MPRDocumentEmbedder(model=str(tiny_run)).run(["text"])


def test_pipeline_yaml_round_trip() -> None:
    pipeline = Pipeline()
    pipeline.add_component("embedder", MPRDocumentEmbedder(batch_size=16))
    text = pipeline.dumps()
    assert Pipeline.loads(text, allowed_modules=ALLOWED_MODULES).dumps() == text
