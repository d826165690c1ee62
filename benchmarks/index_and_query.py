"""Indexing throughput and query latency: mpretriever against Haystack's stock components, same model and data.

Indexing (documents per second, encode + upsert, into a fresh on-disk local Qdrant each):
  * mpretriever: ``index_corpus`` (length-sorted batches, upsert overlapped with encoding), once per encoder
    backend (``torch``; ONNX Runtime ``onnx`` float32 and ``onnx-int8``; the one-time ONNX export is timed
    separately and excluded);
  * Haystack: ``SentenceTransformersDocumentEmbedder`` + ``QdrantDocumentStore.write_documents``.
Query latency (p50 / p99 over N queries, one query at a time, on the same collection):
  * mpretriever: ``MPRetriever.run`` with each backend;
  * Haystack: ``SentenceTransformersTextEmbedder`` + ``QdrantEmbeddingRetriever``.
Retrieval quality of each backend (nDCG@10 / Recall@100 with pytrec_eval on the split's judged queries, when the
whole corpus is indexed), so that the price of int8 is visible next to its speed.

    python benchmarks/index_and_query.py --data nfcorpus --docs 3633 --queries 300 --split test
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import pytrec_eval
import torch
from haystack import Document
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from mpretriever.data import BeirDataset, resolve_dataset
from mpretriever.haystack import MPRetriever
from mpretriever.index import QdrantSettings, collection_manifest, ensure_collection, index_corpus
from mpretriever.model import BiEncoder


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def index_mpretriever(
    model_name: str, backend: str, corpus, directory: Path, batch_size: int, workers: int | None
) -> tuple[float, float]:
    """Seconds to load the encoder (including a first ONNX export) and seconds to index."""
    started = time.perf_counter()
    encoder = BiEncoder.from_pretrained(model_name, backend=backend)
    loaded = time.perf_counter() - started
    client = QdrantSettings(path=str(directory)).connect()
    ensure_collection(client, "bench", collection_manifest(encoder, model_name))
    started = time.perf_counter()
    index_corpus(encoder, corpus, client, "bench", batch_size=batch_size, workers=workers, show_progress=False)
    elapsed = time.perf_counter() - started
    client.close()
    return loaded, elapsed


def retrieval_quality(
    qdrant_dir: Path, backend: str, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 of the collection searched with queries embedded by ``backend``."""
    retriever = MPRetriever(collection="bench", qdrant_path=str(qdrant_dir), top_k=100, backend=backend)
    retriever.warm_up()
    run = {
        query_id: {str(doc.id): float(doc.score) for doc in retriever.run(query=text)["documents"]}
        for query_id, text in queries.items()
    }
    retriever.close()
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    scores = evaluator.evaluate(run)
    return {
        "ndcg@10": statistics.mean(row["ndcg_cut_10"] for row in scores.values()),
        "recall@100": statistics.mean(row["recall_100"] for row in scores.values()),
    }


def index_haystack(model_dir: str, corpus, directory: Path, batch_size: int) -> float:
    embedder = SentenceTransformersDocumentEmbedder(
        model=model_dir,
        batch_size=batch_size,
        meta_fields_to_embed=["title"],
        embedding_separator=" ",
        encode_kwargs={"prompt_name": "document", "task": "document"},
        progress_bar=False,
    )
    embedder.warm_up()
    store = QdrantDocumentStore(
        path=str(directory), index="bench", embedding_dim=384, similarity="cosine", progress_bar=False
    )
    documents = [
        Document(id=row["_id"], content=row["text"], meta={"title": row["title"]} if row["title"] else {})
        for row in corpus
    ]
    started = time.perf_counter()
    store.write_documents(embedder.run(documents)["documents"])
    elapsed = time.perf_counter() - started
    store.close() if hasattr(store, "close") else None
    return elapsed


def query_latencies(run, queries: list[str]) -> list[float]:
    run(queries[0])  # warm-up
    latencies = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="scifact")
    parser.add_argument(
        "--model",
        default=None,
        help="an mpretriever run or sentence-transformers model directory (default: the packaged all-MiniLM-L6-v2)",
    )
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300, help="queries timed for latency")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backends", default="torch,onnx,onnx-int8", help="mpretriever encoder backends to run")
    parser.add_argument("--split", default=None, help="qrels split for nDCG@10 (needs the whole corpus indexed)")
    parser.add_argument("--workers", type=int, default=None, help="mpretriever encoding processes (default: auto)")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]

    dataset = BeirDataset(resolve_dataset(args.data))
    corpus = dataset.corpus.select(range(min(args.docs, len(dataset.corpus))))
    queries = list(dataset.queries.values())[: args.queries]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{args.data}: {len(corpus)} documents, {len(queries)} queries, batch {args.batch_size}, "
        f"model {args.model or 'packaged all-MiniLM-L6-v2'}"
    )

    with tempfile.TemporaryDirectory() as scratch:
        # one saved model for both sides, so that both truncate passages and queries at the same lengths
        model_dir = str(BiEncoder.from_pretrained(args.model).save(Path(scratch) / "model"))
        # Haystack first: the first encoder run in a process pays the kernel warm-up, not mpretriever
        theirs = index_haystack(model_dir, corpus, Path(scratch) / "haystack", args.batch_size)
        ours = {
            backend: index_mpretriever(
                model_dir, backend, corpus, Path(scratch) / backend, args.batch_size, args.workers
            )
            for backend in backends
        }
        print(f"\n{'indexing (encode + upsert)':<52} {'seconds':>8} {'docs/s':>8} {'vs Haystack':>12}")
        print(f"{'Haystack ST document embedder + write_documents':<52} {theirs:>8.1f} {len(corpus) / theirs:>8.1f}")
        for backend, (loaded, elapsed) in ours.items():
            print(
                f"{'mpretriever index_corpus, backend ' + backend:<52} {elapsed:>8.1f} {len(corpus) / elapsed:>8.1f} "
                f"{theirs / elapsed:>11.2f}x   (encoder load {loaded:.1f} s, not counted)"
            )

        latencies: dict[str, list[float]] = {}
        for backend in backends:
            retriever = MPRetriever(
                collection="bench", qdrant_path=str(Path(scratch) / backends[0]), top_k=10, backend=backend
            )
            retriever.warm_up()
            latencies[f"mpretriever MPRetriever, backend {backend}"] = query_latencies(
                lambda q, retriever=retriever: retriever.run(query=q), queries
            )
            retriever.close()
        text_embedder = SentenceTransformersTextEmbedder(
            model=model_dir, encode_kwargs={"prompt_name": "query", "task": "query"}, progress_bar=False
        )
        text_embedder.warm_up()
        store = QdrantDocumentStore(
            path=str(Path(scratch) / backends[0]),
            index="bench",
            embedding_dim=384,
            similarity="cosine",
            progress_bar=False,
        )
        haystack_retriever = QdrantEmbeddingRetriever(store, top_k=10)
        latencies["Haystack ST text embedder + QdrantEmbeddingRetriever"] = query_latencies(
            lambda q: haystack_retriever.run(query_embedding=text_embedder.run(q)["embedding"]), queries
        )
        store.close()
        print(f"\n{'query latency over ' + str(len(queries)) + ' queries (ms)':<52} {'p50':>8} {'p99':>8} {'mean':>8}")
        for name, values in latencies.items():
            print(
                f"{name:<52} {percentile(values, 0.5):>8.2f} {percentile(values, 0.99):>8.2f} "
                f"{statistics.mean(values):>8.2f}"
            )

        if args.split and len(corpus) == len(dataset.corpus):
            qrels = {
                query_id: {doc_id: judgement.grade for doc_id, judgement in judged.items()}
                for query_id, judged in dataset.qrels(args.split).items()
            }
            judged = {query_id: dataset.queries[query_id] for query_id in qrels if query_id in dataset.queries}
            print(f"\n{'quality on ' + args.split + f' ({len(judged)} queries)':<52} {'nDCG@10':>8} {'R@100':>8}")
            pairs = [(backend, backend) for backend in backends]
            pairs += [(backend, "torch") for backend in backends if backend != "torch"]
            for index_backend, query_backend in pairs:
                quality = retrieval_quality(Path(scratch) / index_backend, query_backend, judged, qrels)
                label = f"index {index_backend}, queries {query_backend}"
                print(f"{label:<52} {quality['ndcg@10']:>8.4f} {quality['recall@100']:>8.4f}")


if __name__ == "__main__":
    main()
