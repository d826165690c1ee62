"""Training data from a Hugging Face dataset, read through ``datasets``: ``--data hf:LOCATION[@SPLIT][#COLUMNS]``.

``LOCATION`` is a hub id (``org/name``), a directory written by ``Dataset.save_to_disk`` (a ``DatasetDict``'s too),
or a parquet or JSON-lines file. ``SPLIT`` is the dataset's split (default ``train``). Each row is a query with
its positives, and optionally negatives: a list of texts per row (several positives per query), or one text (a
sentence-transformers (anchor, positive, negative) dataset). The columns are found by their usual names (query:
``query``, ``anchor``, ``question``; positives: ``pos``, ``positives``, ``positive``; negatives: ``neg``,
``negatives``, ``negative``), or named: ``#query=question,pos=relevant_passages,neg=hard_negatives``.

The rows are read as a FlagEmbedding file's lines are (:mod:`mpretriever.data.flagembedding`: passages identified
by their text, ``pos_scores`` / ``neg_scores`` columns when present, errors at their row), and written once per
dataset fingerprint into a cached BEIR directory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpretriever.data.errors import DataFormatError
from mpretriever.data.flagembedding import converted_directory, read_records

if TYPE_CHECKING:
    import datasets

PREFIX = "hf:"
ROLES: dict[str, tuple[str, ...]] = {
    "query": ("query", "anchor", "question"),
    "pos": ("pos", "positives", "positive"),
    "neg": ("neg", "negatives", "negative"),
    "pos_scores": ("pos_scores",),
    "neg_scores": ("neg_scores",),
    "prompt": ("prompt",),
}
FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class HfSource:
    """A parsed ``hf:`` data argument."""

    location: str
    split: str = "train"
    columns: dict[str, str] = field(default_factory=dict)  # role -> column, as named in the argument

    @classmethod
    def parse(cls, text: str) -> HfSource:
        if not text.startswith(PREFIX):
            raise ValueError(f"not a Hugging Face dataset argument (hf:...): {text}")
        rest, _, column_text = text[len(PREFIX) :].partition("#")
        location, _, split = rest.partition("@")
        if not location:
            raise ValueError(f"{text}: name a dataset after hf: (a hub id, a save_to_disk directory or a file)")
        columns = {}
        for item in filter(None, column_text.split(",")):
            role, equals, column = item.partition("=")
            if not equals or role.strip() not in ROLES or not column.strip():
                raise ValueError(f"{text}: columns are given as ROLE=COLUMN with ROLE one of {', '.join(ROLES)}")
            columns[role.strip()] = column.strip()
        return cls(location=location, split=split or "train", columns=columns)


def is_hf_argument(text: str | Path) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def load_rows(source: HfSource) -> datasets.Dataset:
    """The dataset split ``source`` names."""
    import datasets

    path = Path(source.location).expanduser()
    if path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if source.split not in loaded:
                raise DataFormatError(path, f"no split '{source.split}' (it has {', '.join(loaded)}): add @SPLIT")
            return loaded[source.split]
        return loaded
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise DataFormatError(path, f"read as a dataset from {', '.join(FILE_BUILDERS)} files only")
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    if path.exists():
        raise DataFormatError(path, "neither a directory written by save_to_disk nor a parquet/JSON-lines file")
    return datasets.load_dataset(source.location, split=source.split)  # a hub id: downloaded by datasets


def role_columns(rows: datasets.Dataset, source: HfSource, label: str) -> dict[str, str]:
    """Which column plays each role: as named, else the first usual name the dataset has."""
    names = list(rows.column_names)
    chosen = {}
    for role, usual in ROLES.items():
        named = source.columns.get(role)
        if named is not None:
            if named not in names:
                raise DataFormatError(label, f"no column '{named}' (the dataset has {', '.join(names)})")
            chosen[role] = named
            continue
        found = next((name for name in usual if name in names), None)
        if found is not None:
            chosen[role] = found
    for role in ("query", "pos"):
        if role not in chosen:
            raise DataFormatError(
                label,
                f"no {role} column (looked for {', '.join(ROLES[role])}; the dataset has {', '.join(names)}): "
                f"name it, e.g. #{role}=COLUMN",
            )
    return chosen


def numbered_rows(rows: datasets.Dataset, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows (numbered from 1) in FlagEmbedding's keys; a single text where a list is expected becomes a list."""
    for number, row in enumerate(rows, start=1):
        record = {role: row[column] for role, column in columns.items()}
        for role in ("pos", "neg"):
            if isinstance(record.get(role), str):
                record[role] = [record[role]]
        yield number, record


def hf_directory(argument: str, cache: Path | None = None) -> Path:
    """The cached BEIR directory of the dataset an ``hf:`` argument names (see the module docstring)."""
    source = HfSource.parse(argument)
    rows = load_rows(source)
    label = f"{argument} row"
    columns = role_columns(rows, source, label)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source.location).name or source.location).strip("_") or "dataset"
    key = hashlib.sha256(f"{rows._fingerprint}|{sorted(columns.items())}".encode()).hexdigest()[:12]
    return converted_directory(
        f"{stem}-{source.split}-{key}",
        lambda: read_records(Path(label), numbered_rows(rows, columns)),
        argument,
        cache,
    )
