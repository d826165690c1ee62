"""Dataset name resolution: path, cache, offline mirror, then download."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mpretriever.data import DatasetNotFoundError, resolve_dataset
from mpretriever.data.resolve import BEIR_URL_ENV, MIRROR_ENV
from tests.conftest import SHARED_DATA, write_jsonl


def _make(root: Path) -> Path:
    write_jsonl(root / "corpus.jsonl", [{"_id": "d", "text": "t"}])
    write_jsonl(root / "queries.jsonl", [{"_id": "q", "text": "t"}])
    return root


def test_path_is_used_as_is(tiny_beir: Path) -> None:
    assert resolve_dataset(tiny_beir) == tiny_beir
    assert resolve_dataset(str(tiny_beir)) == tiny_beir


def test_name_resolves_through_the_mirror(tmp_path: Path, monkeypatch) -> None:
    if not (SHARED_DATA / "nfcorpus").is_dir():
        pytest.skip("shared data not available")
    monkeypatch.setenv(MIRROR_ENV, str(SHARED_DATA))
    assert resolve_dataset("nfcorpus", cache_dir=tmp_path / "cache") == SHARED_DATA / "nfcorpus"


def test_cache_comes_before_the_mirror(tmp_path: Path, monkeypatch) -> None:
    cached = _make(tmp_path / "cache" / "scifact")
    _make(tmp_path / "mirror" / "scifact")
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    assert resolve_dataset("scifact", cache_dir=tmp_path / "cache") == cached


def test_unknown_name_explains_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"'my-data' is neither a path nor found in .*set MPR_DATA_MIRROR"):
        resolve_dataset("my-data", cache_dir=tmp_path)


def test_failed_download_fails_fast_with_advice(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv(BEIR_URL_ENV, "http://127.0.0.1:9/{name}.zip")
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match=r"could not be downloaded .* Point MPR_DATA_MIRROR"):
        resolve_dataset("fiqa", cache_dir=tmp_path)
    assert time.monotonic() - started < 10
    assert not (tmp_path / "fiqa").exists(), "nothing half-downloaded is left in the cache"


def test_existing_path_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a BEIR dataset directory"):
        resolve_dataset(tmp_path)


def test_a_download_that_is_not_a_zip_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    page = tmp_path / "fiqa.zip"
    page.write_text("<html>proxy login</html>")
    monkeypatch.setenv(BEIR_URL_ENV, f"{page.parent.as_uri()}/{{name}}.zip")
    with pytest.raises(DatasetNotFoundError, match=r"'fiqa' downloaded from file://.* is not a valid zip archive"):
        resolve_dataset("fiqa", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "fiqa").exists()
