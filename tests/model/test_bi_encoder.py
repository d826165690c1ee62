"""The bi-encoder: configuration, inference lengths, and saved runs that sentence-transformers and Haystack read
identically."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer

from mpretriever.data import DataFormatError
from mpretriever.model import MANIFEST_NAME, BiEncoder, RunManifest, default_model_path

QUERIES = ["statin breast cancer", "vitamin " * 60]  # 5 and 62 tokens
TRUNCATION_LOG = "mpretriever.model.bi_encoder"
PASSAGES = [("Statins", "cholesterol heart risk study"), ("", "coffee tea sleep brain " * 40)]


def _ours(model: BiEncoder, texts: list[str], kind: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(model.pad(model.tokenize(texts, kind)))


def test_plain_transformers_model_gets_mean_pooling(tiny_model_dir: Path) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir)
    assert model.config.pooling == "mean" and model.config.normalize is False
    assert model.config.similarity == "cosine"
    assert model.dimension == 32


def test_overrides_rebuild_pooling_and_normalisation(tiny_model_dir: Path) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir, pooling="cls", normalize=True, similarity="dot")
    embeddings = _ours(model, QUERIES, "query")
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))
    plain = BiEncoder.from_pretrained(tiny_model_dir, pooling="cls")
    features = plain.pad(plain.tokenize(QUERIES, "query"))
    plain.eval()
    with torch.no_grad():
        tokens = plain.transformer.auto_model(**features).last_hidden_state
    torch.testing.assert_close(_ours(plain, QUERIES, "query"), tokens[:, 0])


def test_similarity_is_cosine_even_without_normalised_embeddings(tiny_model_dir: Path) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir, normalize=False, similarity="cosine")
    q, p = torch.randn(3, 32), torch.randn(4, 32)
    torch.testing.assert_close(
        model.similarity(q, p), torch.nn.functional.cosine_similarity(q[:, None], p[None], dim=-1)
    )
    dot = BiEncoder.from_pretrained(tiny_model_dir, similarity="dot")
    torch.testing.assert_close(dot.similarity(q, p), q @ p.T)


def test_saved_run_loads_in_sentence_transformers_with_equal_embeddings(tiny_model_dir: Path, tmp_path: Path) -> None:
    trained = BiEncoder.from_pretrained(
        tiny_model_dir,
        query_prefix="query: ",
        passage_prefix="passage: ",
        query_max_length=16,
        passage_max_length=48,
        normalize=True,
    )
    trained.save(tmp_path / "run")
    loaded = SentenceTransformer(str(tmp_path / "run"))
    model = BiEncoder.from_pretrained(tmp_path / "run")  # both: queries up to the maximum, passages up to 48
    texts = [f"{t} {x}".strip() for t, x in PASSAGES]
    torch.testing.assert_close(loaded.encode_query(QUERIES, convert_to_tensor=True), _ours(model, QUERIES, "query"))
    torch.testing.assert_close(loaded.encode_document(texts, convert_to_tensor=True), _ours(model, texts, "passage"))
    assert loaded.similarity_fn_name == "cosine" and loaded.max_seq_length == 128
    saved = json.loads((tmp_path / "run" / "sentence_bert_config.json").read_text())
    assert saved["document_length"] == 48 and saved.get("query_length") is None
    assert max(len(ids) for ids in model.tokenize(texts, "passage")) == 48  # the long passage is cut


def test_inference_reads_queries_up_to_the_maximum_and_passages_at_the_training_length(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    plain = BiEncoder.from_pretrained(tiny_model_dir)  # no manifest: the tiny BERT's 128 position embeddings
    assert plain.max_seq_length == 128
    assert (plain.config.query_max_length, plain.config.passage_max_length) == (128, 128)
    assert [len(ids) for ids in plain.tokenize(QUERIES, "query")] == [5, 62]  # not cut at the training default 32

    trained = BiEncoder.from_pretrained(tiny_model_dir, query_max_length=16, passage_max_length=48)
    trained.save(tmp_path / "run")
    recorded = RunManifest.load(tmp_path / "run").encoder
    assert (recorded.query_max_length, recorded.passage_max_length) == (16, 48)  # the training lengths, recorded
    run = BiEncoder.from_pretrained(tmp_path / "run")
    assert (run.config.query_max_length, run.config.passage_max_length) == (128, 48)  # served as it was trained
    assert run.served_lengths == {"query_max_length": 128, "passage_max_length": 48}
    assert trained.served_lengths == plain.served_lengths == {"query_max_length": 128, "passage_max_length": 128}
    longer = BiEncoder.from_pretrained(tiny_model_dir, passage_max_length=512)
    longer.save(tmp_path / "longer")
    assert BiEncoder.from_pretrained(tmp_path / "longer").config.passage_max_length == 128  # capped at the maximum
    assert run.fingerprint() == trained.fingerprint() == plain.fingerprint()  # lengths are not the model
    shorter = BiEncoder.from_pretrained(tmp_path / "run", query_max_length=8, passage_max_length=24)
    assert (shorter.config.query_max_length, shorter.config.passage_max_length) == (8, 24)
    assert [len(ids) for ids in shorter.tokenize(QUERIES, "query")] == [5, 8]


def test_cut_texts_are_counted_in_one_log_line(tiny_model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir, query_max_length=8)
    caplog.set_level(logging.INFO, logger=TRUNCATION_LOG)
    model.encode(QUERIES, "query", convert_to_tensor=True)
    model.embed_texts(QUERIES[:1], "query")
    assert [r.getMessage() for r in caplog.records] == ["1 of 2 queries longer than 8 tokens was truncated"]

    caplog.clear()
    with model.counting_truncation("query") as count:
        model.encode(QUERIES * 2, "query")
        model.embed_texts(QUERIES, "query")
    assert (count.texts, count.truncated) == (6, 3)
    assert [r.getMessage() for r in caplog.records] == ["3 of 6 queries longer than 8 tokens were truncated"]

    caplog.clear()
    BiEncoder.from_pretrained(tiny_model_dir).encode(QUERIES, "query")  # nothing cut at the model's maximum
    assert not caplog.records


def test_manifest_round_trip_restores_the_encoder(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir, pooling="cls", query_prefix="q: ", query_max_length=20)
    model.save(tmp_path / "run", model.manifest(loss="lsepair", final_train_loss=0.5))
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.loss == "lsepair" and manifest.final_train_loss == 0.5
    assert manifest.dimension == 32 and manifest.base_model == str(tiny_model_dir)
    reloaded = BiEncoder.from_pretrained(tmp_path / "run", query_max_length=20, passage_max_length=128)
    assert reloaded.config == model.config
    torch.testing.assert_close(_ours(reloaded, QUERIES, "query"), _ours(model, QUERIES, "query"))


def test_broken_manifest_names_the_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    BiEncoder.from_pretrained(tiny_model_dir).save(tmp_path / "run")
    (tmp_path / "run" / MANIFEST_NAME).write_text('{"base_model": "x",\n "dimension": }')
    with pytest.raises(DataFormatError, match=r"mpretriever.json:2: invalid JSON"):
        BiEncoder.from_pretrained(tmp_path / "run")
    (tmp_path / "run" / MANIFEST_NAME).write_text(json.dumps({"base_model": "x"}))
    with pytest.raises(DataFormatError, match="not a valid mpretriever manifest"):
        BiEncoder.from_pretrained(tmp_path / "run")


def test_haystack_embedders_give_the_same_embeddings(tiny_model_dir: Path, tmp_path: Path) -> None:
    from haystack import Document
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    BiEncoder.from_pretrained(
        tiny_model_dir, query_prefix="query: ", passage_prefix="passage: ", query_max_length=16, passage_max_length=48
    ).save(tmp_path / "run")
    model = BiEncoder.from_pretrained(tmp_path / "run")
    text_embedder = SentenceTransformersTextEmbedder(
        model=str(tmp_path / "run"), encode_kwargs={"prompt_name": "query", "task": "query"}, progress_bar=False
    )
    text_embedder.warm_up()
    for query, expected in zip(QUERIES, _ours(model, QUERIES, "query"), strict=True):
        embedding = torch.tensor(text_embedder.run(query)["embedding"])
        torch.testing.assert_close(embedding, expected)

    document_embedder = SentenceTransformersDocumentEmbedder(
        model=str(tmp_path / "run"),
        meta_fields_to_embed=["title"],
        embedding_separator=" ",
        encode_kwargs={"prompt_name": "document", "task": "document"},
        progress_bar=False,
    )
    document_embedder.warm_up()
    documents = [Document(content=text, meta={"title": title} if title else {}) for title, text in PASSAGES]
    embedded = document_embedder.run(documents)["documents"]
    expected = _ours(model, [f"{t} {x}".strip() for t, x in PASSAGES], "passage")
    torch.testing.assert_close(torch.tensor([d.embedding for d in embedded]), expected)


def test_default_model_is_the_packaged_minilm() -> None:
    model = BiEncoder.from_pretrained()
    assert model.dimension == 384
    assert model.config.pooling == "mean" and model.config.normalize is True
    # its own max_seq_length, as sentence-transformers and MTEB embed it (not the training defaults 32 / 128)
    assert (model.config.query_max_length, model.config.passage_max_length, model.max_seq_length) == (256, 256, 256)
    assert model.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    reference = SentenceTransformer(default_model_path())
    texts = ["Breast Cancer Cells Feed on Cholesterol", "Using Diet to Treat Asthma and Eczema"]
    torch.testing.assert_close(_ours(model, texts, "query"), reference.encode(texts, convert_to_tensor=True))


def test_tiny_tokenizer_knows_its_words(tiny_model_dir: Path) -> None:
    model = BiEncoder.from_pretrained(tiny_model_dir)
    ids = model.tokenize(["Cancer cell"], "query")[0]
    assert model.tokenizer.unk_token_id not in ids and len(ids) == 4
