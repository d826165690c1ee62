"""A short SentenceTransformerTrainer run on real NFCorpus rows (exported as FlagEmbedding JSONL on the fly): the
saved model is indexed by ``mpr index`` and served by the Haystack retriever."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from mpretriever.data import BeirDataset
from mpretriever.data.beir import passage_text
from mpretriever.data.export import export_flagembedding
from mpretriever.haystack import MPRetriever
from mpretriever.losses.st import LSEPairLoss, MultiPositiveDataCollator
from mpretriever.model import BiEncoder
from tests.cli.test_cli import run_cli
from tests.losses.st.batches import features


def test_trainer_run_saves_a_model_that_mpr_indexes_and_serves(
    nfcorpus_sample: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    data_file = tmp_path / "train.jsonl"
    stats = export_flagembedding(BeirDataset(nfcorpus_sample), "train", data_file)
    train = datasets.load_dataset("json", data_files=str(data_file), split="train").select_columns(["query", "pos"])
    assert len(train) == stats.queries and max(len(pos) for pos in train["pos"]) > 1

    model = BiEncoder.from_pretrained(tiny_model_dir, normalize=True).model
    loss = LSEPairLoss(model, mini_batch_size=8)
    collator = MultiPositiveDataCollator.for_loss(loss, max_positives=3, seed=1)
    probe = MultiPositiveDataCollator.for_loss(loss, max_positives=3, seed=1)(list(train.select(range(8))))
    with torch.no_grad():
        model.eval()
        before = loss(*features(probe)).item()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=3,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss, data_collator=collator)
    trainer.train()
    with torch.no_grad():
        model.eval()
        after = loss(*features(probe)).item()
    assert after < before, (before, after)
    saved = tmp_path / "st-model"
    model.save(str(saved))

    qdrant = str(tmp_path / "qdrant")
    index = ["index", "--data", str(nfcorpus_sample), "--model", str(saved), "--collection", "st"]
    code, _, err = run_cli([*index, "--qdrant-path", qdrant, "--max-docs", "80"], capsys, monkeypatch)
    assert code == 0, err
    retriever = MPRetriever(collection="st", qdrant_path=qdrant, top_k=3)
    try:
        query = train[0]["query"]
        documents = retriever.run(query=query)["documents"]
        assert len(documents) == 3
        reloaded = SentenceTransformer(str(saved))
        top = documents[0]
        passage = passage_text(top.meta.get("title", ""), top.content or "")  # what mpr index embedded
        vectors = reloaded.encode([query, passage], normalize_embeddings=True)
        assert np.isclose(float(vectors[0] @ vectors[1]), top.score, atol=1e-4)
    finally:
        retriever.close()
