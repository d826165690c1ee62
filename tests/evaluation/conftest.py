"""Evaluation fixtures: a private embedding cache for every test, and a dataset with an unanswerable query."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import write_qrels


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$MPR_CACHE_DIR`` in the test's temporary directory, so no test reads or fills the user's cache."""
    directory = tmp_path / "mpr-cache"
    monkeypatch.setenv("MPR_CACHE_DIR", str(directory))
    return directory


@pytest.fixture(scope="session")
def graded_beir(tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_beir`` with a ``test`` split of graded judgements (3, 2, 1 for each query's three documents, plus a
    judged non-relevant document) for q0-q9, and a query (q10) whose only judgement is grade 0."""
    root = tmp_path_factory.mktemp("graded-beir")
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(tiny_beir / name, root / name)
    rows = [(f"q{q}", f"d{q}-{p}", 3 - p) for q in range(10) for p in range(3)]
    rows += [(f"q{q}", f"n{q}", 0) for q in range(10)]
    rows.append(("q10", "n11", 0))
    write_qrels(root / "qrels" / "test.tsv", rows)
    return root
