"""The time an alias switch takes while 8 clients query the service, and what the clients see.

Two versions of a collection are built behind the alias ``bench`` from the first N passages of a corpus: one with
the packaged all-MiniLM-L6-v2 (served first) and one with the same weights under CLS pooling (another model to the
index: another fingerprint, other vectors). The service (uvicorn, embedded Qdrant) answers 8 clients that query
without pause; after a few seconds the alias is switched to the second version and the first is deleted at once,
as ``mpr collections prune --keep 1`` would. Printed: how long the alias request took, when the service answered
from the new model, the failed requests, and query latency before, during (the first 2 s) and after the switch.

    python benchmarks/alias_switch.py --data nfcorpus --docs 500
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import httpx
import uvicorn

from mpretriever.data import BeirDataset, resolve_dataset
from mpretriever.index import QdrantSettings, index_dataset
from mpretriever.index.versions import switch_alias
from mpretriever.model import BiEncoder
from mpretriever.service import ServiceSettings, create_app

CLIENTS = 8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="nfcorpus")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=4.0, help="Querying before and after the switch.")
    args = parser.parse_args()
    dataset = BeirDataset(resolve_dataset(args.data))
    corpus = dataset.corpus.select(range(min(args.docs, len(dataset.corpus))))
    questions = list(dataset.queries.values())[:200]
    with tempfile.TemporaryDirectory() as scratch:
        qdrant = QdrantSettings(path=f"{scratch}/qdrant")
        other = Path(scratch) / "cls"
        BiEncoder.from_pretrained(None, pooling="cls").save(other)
        built = {}
        for name, model in (("new", str(other)), ("old", None)):
            encoder = BiEncoder.from_pretrained(model)
            reference = model or "sentence-transformers/all-MiniLM-L6-v2"
            built[name] = index_dataset(encoder, corpus, args.data, qdrant, "bench", reference, alias=True).collection
        app = create_app(ServiceSettings(qdrant=qdrant, collection="bench", threads=4, rag_pipeline=None))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        stop = threading.Event()
        answers: list[tuple[float, float]] = []  # (finished at, latency)
        failures: list[str] = []

        def query(index: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                number = index
                while not stop.is_set():
                    started = time.perf_counter()
                    body = {"question": questions[number % len(questions)], "top_k": 10, "generate": False}
                    response = client.post("/query", json=body)
                    number += CLIENTS
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:120]}")
                    answers.append((time.perf_counter(), time.perf_counter() - started))

        threads = [threading.Thread(target=query, args=(index,)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        client = app.state.service.search._retriever.client  # the embedded Qdrant admits the service's client only
        switched_at = time.perf_counter()
        switch_alias(client, "bench", built["new"])
        request_ms = (time.perf_counter() - switched_at) * 1000
        client.delete_collection(built["old"])
        while httpx.get(f"{url}/health").json()["qdrant"]["serving"] != built["new"]:
            time.sleep(0.01)
        followed_ms = (time.perf_counter() - switched_at) * 1000
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        server.should_exit = True
    phases = {
        "before": [lat for at, lat in answers if at < switched_at],
        "first 2 s after the switch": [lat for at, lat in answers if switched_at <= at < switched_at + 2],
        "after": [lat for at, lat in answers if at >= switched_at + 2],
    }
    print(f"{CLIENTS} clients, {len(answers)} queries, {len(failures)} failed; {args.docs} passages of {args.data}")
    print(f"alias request {request_ms:.1f} ms; the service answered from the new model {followed_ms:.0f} ms after it")
    for name, latencies in phases.items():
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        print(f"  {name:28} {len(latencies):5d} queries  p50 {p50:6.1f} ms  p99 {p99:7.1f} ms")
    if failures:
        print("failures:", *failures[:5], sep="\n  ")


if __name__ == "__main__":
    main()
