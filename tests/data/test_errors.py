"""Errors for bad input files name the file and line: YAML files read through read_yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.data.errors import DataFormatError
from mpretriever.files import read_yaml


def test_read_yaml_names_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yml"
    path.write_bytes("components:\n  reader:\n    name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as caught:
        read_yaml(path)
    assert str(caught.value) == f"{path}:3: not valid UTF-8 (byte 0xe9 at position 14 of the line)"


def test_read_yaml_names_the_line_of_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "study.yml"
    path.write_text("name: x\nseeds: [1, 2\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"^{path}:3: invalid YAML"):
        read_yaml(path)
