"""Turning ``--data`` into a dataset directory: a path, or a BEIR dataset name.

A name is looked up, in order, in the cache directory (``$MPR_CACHE_DIR/datasets``, default
``~/.cache/mpretriever/datasets``), in an offline mirror directory named by ``$MPR_DATA_MIRROR``, and finally
downloaded from the official BEIR distribution into the cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from mpretriever.cache import cache_dir as mpretriever_cache_dir
from mpretriever.data.beir import JSONL_SUFFIXES
from mpretriever.data.errors import DataFormatError
from mpretriever.data.flagembedding import beir_directory, is_flagembedding_file
from mpretriever.data.hf_dataset import hf_directory, is_hf_argument
from mpretriever.data.text_files import find_existing

logger = logging.getLogger(__name__)

MIRROR_ENV = "MPR_DATA_MIRROR"
BEIR_URL_ENV = "MPR_BEIR_URL"
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
DOWNLOAD_TIMEOUT_S = 30

BEIR_DATASETS = frozenset(
    {
        "arguana",
        "bioasq",
        "climate-fever",
        "cqadupstack",
        "dbpedia-entity",
        "fever",
        "fiqa",
        "hotpotqa",
        "msmarco",
        "nfcorpus",
        "nq",
        "quora",
        "robust04",
        "scidocs",
        "scifact",
        "signal1m",
        "trec-covid",
        "trec-news",
        "webis-touche2020",
    }
)


class DatasetNotFoundError(FileNotFoundError):
    """Neither a path nor a resolvable dataset name."""


def is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and find_existing(path, "corpus", JSONL_SUFFIXES) is not None


def resolve_dataset(name_or_path: str | Path, cache_dir: Path | None = None, download: bool = True) -> Path:
    """Return the directory of a BEIR-layout dataset given its path or its name; a FlagEmbedding JSON-lines file
    (``.jsonl``, ``.jsonl.gz``) gives the BEIR directory it converts to (:mod:`mpretriever.data.flagembedding`), and
    so does a Hugging Face dataset named ``hf:LOCATION[@SPLIT][#COLUMNS]`` (:mod:`mpretriever.data.hf_dataset`)."""
    if is_hf_argument(name_or_path):
        try:
            return hf_directory(str(name_or_path))
        except (DataFormatError, ValueError):
            raise
        except Exception as error:  # what datasets raises for a hub id it cannot fetch (offline, unknown, private)
            raise DatasetNotFoundError(f"cannot load the Hugging Face dataset {name_or_path}: {error}") from error
    candidate = Path(name_or_path).expanduser()
    if is_flagembedding_file(candidate):
        return beir_directory(candidate)
    if candidate.exists():
        if not is_dataset_dir(candidate):
            raise DataFormatError(candidate, "not a BEIR dataset directory (no corpus.jsonl or corpus.jsonl.gz)")
        return candidate
    name = str(name_or_path)
    if os.sep in name or "/" in name:
        raise DatasetNotFoundError(f"dataset directory not found: {candidate}")

    cache = cache_dir or mpretriever_cache_dir("datasets")
    searched = [cache / name]
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        searched.append(Path(mirror).expanduser() / name)
    for directory in searched:
        if is_dataset_dir(directory):
            return directory

    if name not in BEIR_DATASETS or not download:
        raise DatasetNotFoundError(
            f"dataset '{name}' is neither a path nor found in {', '.join(map(str, searched))}"
            + (f"; set {MIRROR_ENV} to a directory holding it" if not mirror else "")
            + ("" if name in BEIR_DATASETS else f"; known BEIR names: {', '.join(sorted(BEIR_DATASETS))}")
        )
    return download_beir(name, cache)


def download_beir(name: str, cache: Path) -> Path:
    """Download and unpack an official BEIR zip into ``cache/name`` (atomically: no half-unpacked dataset)."""
    url = os.environ.get(BEIR_URL_ENV, BEIR_URL).format(name=name)
    cache.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s from %s", name, url)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{name}-") as staging:
        archive = Path(staging) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise DatasetNotFoundError(
                f"dataset '{name}' is not cached and could not be downloaded from {url}: {error}. "
                f"Offline? Point {MIRROR_ENV} at a directory holding '{name}' in the BEIR layout."
            ) from error
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(staging)
        except (zipfile.BadZipFile, EOFError) as error:  # e.g. a proxy's error page, or a cut-off download
            message = f"dataset '{name}' downloaded from {url} is not a valid zip archive: {error}"
            raise DatasetNotFoundError(message) from None
        unpacked = Path(staging) / name
        if not is_dataset_dir(unpacked):
            raise DataFormatError(archive, f"archive from {url} does not hold a BEIR dataset '{name}/'")
        target = cache / name
        unpacked.rename(target)
    return target
