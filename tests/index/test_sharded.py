"""Sharded indexing under torchrun, on 2 CPU processes (gloo) and an embedded Qdrant: the same points and vectors as
one process, and a run that loses a process completes when run again, without duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpretriever.data import BeirDataset
from mpretriever.index import QdrantSettings, index_dataset
from mpretriever.index.sharded import shard_of
from mpretriever.index.versions import alias_target
from mpretriever.model import BiEncoder
from tests.conftest import REPO_ROOT

WORKER = Path(__file__).with_name("sharded_worker.py")
PROCESSES = 2
TORCHRUN_TIMEOUT_S = 300


def _torchrun(arguments: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(PROCESSES),
        str(WORKER), "index", *arguments,
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT_S, env=environment, cwd=REPO_ROOT
    )


def _points(qdrant: Path, collection: str) -> dict[str, np.ndarray]:
    client = QdrantSettings(path=str(qdrant)).connect(must_exist=True)
    try:
        records, _ = client.scroll(collection, limit=10_000, with_vectors=True, with_payload=["id"])
    finally:
        client.close()
    assert len({record.payload["id"] for record in records}) == len(records)  # no document twice
    return {record.payload["id"]: np.asarray(record.vector) for record in records}


@pytest.fixture
def one_process(tiny_run: Path, tiny_beir: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    qdrant = tmp_path / "one"
    encoder = BiEncoder.from_pretrained(tiny_run)
    outcome = index_dataset(
        encoder, BeirDataset(tiny_beir).corpus, "tiny", QdrantSettings(path=str(qdrant)), "docs", str(tiny_run),
        alias=True, show_progress=False, workers=1,
    )  # fmt: skip
    return _points(qdrant, outcome.collection)


def test_the_shards_split_by_document_id() -> None:
    ids = [f"doc-{number}" for number in range(2000)]
    shares = [sum(1 for doc_id in ids if shard_of(doc_id, 2) == rank) for rank in range(2)]
    assert sum(shares) == 2000 and min(shares) > 900  # balanced, and independent of the order:
    assert [shard_of(doc_id, 2) for doc_id in reversed(ids)] == [shard_of(doc_id, 2) for doc_id in ids][::-1]
    assert {shard_of("x", 1)} == {0}


def test_two_processes_write_what_one_writes(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path, one_process: dict[str, np.ndarray]
) -> None:
    qdrant = tmp_path / "two"
    arguments = ["--data", str(tiny_beir), "--model", str(tiny_run), "--alias", "docs", "--qdrant-path", str(qdrant)]
    done = _torchrun(arguments)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = " ".join(done.stderr.split())
    assert "60 written, 0 already present, 60 points in the collection" in summary, summary[-2000:]
    assert summary.count("alias 'docs' now serves it") == 1  # reported by process 0 only
    client = QdrantSettings(path=str(qdrant)).connect()
    try:
        served = alias_target(client, "docs")
    finally:
        client.close()
    two_processes = _points(qdrant, served)
    assert sorted(two_processes) == sorted(one_process)
    for doc_id, vector in one_process.items():
        np.testing.assert_allclose(two_processes[doc_id], vector, atol=1e-5)


def test_a_run_that_loses_a_process_completes_when_run_again(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path, one_process: dict[str, np.ndarray]
) -> None:
    qdrant = tmp_path / "killed"
    arguments = ["--data", str(tiny_beir), "--model", str(tiny_run), "--alias", "docs", "--qdrant-path", str(qdrant)]
    killed = _torchrun(arguments, MPR_TEST_KILL_RANK="1")
    assert killed.returncode != 0
    assert "Signals.SIGKILL" in killed.stderr or "SIGKILL" in killed.stderr, killed.stderr[-3000:]
    client = QdrantSettings(path=str(qdrant)).connect()
    try:
        assert alias_target(client, "docs") is None  # the alias moves only once every shard is written
        (version,) = [c.name for c in client.get_collections().collections]
        partial = client.count(version, exact=True).count
    finally:
        client.close()
    print(f"\nthe killed run left {partial} of 60 points")
    assert partial < 60
    rerun = _torchrun(arguments)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = " ".join(rerun.stderr.split())
    assert f"{60 - partial} written, {partial} already present, 60 points in the collection" in summary, summary
    assert _points(qdrant, version).keys() == one_process.keys()


def test_each_process_writes_its_own_shard(
    tiny_run: Path, tiny_beir: Path, tmp_path: Path, one_process: dict[str, np.ndarray]
) -> None:
    """The path of a Qdrant server (every process writes its own points), in a group of one process: no server
    runs here, and an embedded Qdrant admits one process."""
    import torch.distributed as dist

    from mpretriever.index.run import IndexRequest
    from mpretriever.index.sharded import ProcessGroup, index_sharded

    qdrant = QdrantSettings(path=str(tmp_path / "each"))
    request = IndexRequest(collection="docs", corpus_name="tiny", model_name=str(tiny_run), alias=True, sync=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        outcome = index_sharded(
            ProcessGroup(rank=0, world_size=1), request, BiEncoder.from_pretrained(tiny_run),
            BeirDataset(tiny_beir).corpus, qdrant, show_progress=False, each_process_writes=True,
        )  # fmt: skip
    finally:
        dist.destroy_process_group()
    assert outcome.switched and outcome.stats.written == 60 and outcome.stats.points_in_collection == 60
    written = _points(tmp_path / "each", outcome.collection)
    assert written.keys() == one_process.keys()
    for doc_id, vector in one_process.items():
        np.testing.assert_allclose(written[doc_id], vector, atol=1e-5)
