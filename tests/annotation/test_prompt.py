from __future__ import annotations

from pathlib import Path

import pytest

from mpretriever.annotation.prompt import DEFAULT_TEMPLATE, GradingPrompt
from mpretriever.data.errors import DataFormatError


def test_the_default_prompt_asks_for_the_umbrela_grades() -> None:
    prompt = GradingPrompt.from_file()
    text = prompt.render(query="statins", passage="Statins lower cholesterol.")
    for grade in "0123":
        assert f"\n{grade} = " in text
    assert "Query: statins\nPassage: Statins lower cholesterol." in text
    assert text.endswith("Grade (0-3):")
    assert prompt.source == str(DEFAULT_TEMPLATE)


def test_a_template_must_use_query_and_passage(tmp_path: Path) -> None:
    path = tmp_path / "bad.jinja"
    path.write_text("Passage: {{ passage }} {{ title }}\nGrade:", encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        GradingPrompt.from_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "{{ query }}" in message and "'title'" in message


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jinja"
    path.write_text("Query: {{ query }}\nPassage: {{ passage }\nGrade:", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"^{path}:2: invalid Jinja template"):
        GradingPrompt.from_file(path)


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="prompt template not found"):
        GradingPrompt.from_file(tmp_path / "absent.jinja")


def test_the_hash_follows_the_text() -> None:
    one = GradingPrompt("{{ query }} {{ passage }}")
    assert one.sha256 == GradingPrompt("{{ query }} {{ passage }}").sha256
    assert one.sha256 != GradingPrompt("{{ query }}: {{ passage }}").sha256
    assert one.render("q", "p  \n\n") == "q p"
