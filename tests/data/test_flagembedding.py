"""Reading FlagEmbedding's JSON-lines training format: passages identified by their text, grades from scores,
the counted skips, and `path:line` errors; on NFCorpus converted on the fly."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from mpretriever.data.errors import DataFormatError
from mpretriever.data.flagembedding import passage_id, read_flagembedding
from tests.conftest import SHARED_DATA, nfcorpus_graded_texts, write_jsonl


def _nfcorpus_as_flagembedding(path: Path, queries: int = 40) -> tuple[Path, dict[str, dict[str, int]], dict]:
    """NFCorpus's graded train links, as a FlagEmbedding file (grades in pos_scores, 3 random negatives)."""
    corpus, texts, graded = nfcorpus_graded_texts()
    rng = random.Random(5)
    chosen = sorted(graded)[:queries]
    records = []
    for query_id in chosen:
        positives = sorted(graded[query_id])
        negatives = rng.sample(sorted(set(corpus) - set(positives)), 3)
        records.append(
            {
                "query": texts[query_id],
                "pos": [corpus[d] for d in positives],
                "pos_scores": [graded[query_id][d] for d in positives],
                "neg": [corpus[d] for d in negatives],
            }
        )
    return write_jsonl(path, records), {q: graded[q] for q in chosen}, corpus


def test_nfcorpus_converted_keeps_every_positive_with_its_grade(tmp_path: Path) -> None:
    path, graded, corpus = _nfcorpus_as_flagembedding(tmp_path / "nf.jsonl")
    data = read_flagembedding(path)
    assert len(data.queries) == len(graded) and data.skipped_without_positive == 0
    by_text: dict[str, dict[str, int]] = {}
    for query_id, judged in data.qrels.items():
        by_text[data.queries[query_id]] = {data.corpus[d]: j.grade for d, j in judged.items()}
    _, queries, _ = nfcorpus_graded_texts()
    for query_id, grades in graded.items():
        expected: dict[str, int] = {}
        for doc_id, grade in grades.items():  # two NFCorpus documents may share a text: one passage, best grade
            expected[corpus[doc_id]] = max(grade, expected.get(corpus[doc_id], 0))
        assert by_text[queries[query_id]] == expected
    assert {j.source for judged in data.qrels.values() for j in judged.values()} == {"human"}
    assert all(len(negatives) == 3 for negatives in data.negatives.values())
    assert data.scores == {}  # whole-number scores are grades, not scores to keep


def test_one_passage_text_is_one_corpus_row_wherever_it_appears(tmp_path: Path) -> None:
    shared = "Vitamin D and the risk of breast cancer."
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"query": "vitamin d cancer", "pos": [shared, "Sunlight and serum vitamin D."], "neg": ["Statins."]},
            {"query": "breast cancer risk", "pos": ["Statins."], "neg": [shared, "Coffee."], "prompt": "Find: "},
        ],
    )
    data = read_flagembedding(path)
    first, second = data.queries
    assert passage_id(shared) in data.qrels[first] and data.negatives[second][0] == passage_id(shared)
    assert passage_id("Statins.") in data.qrels[second] and data.negatives[first] == [passage_id("Statins.")]
    assert len(data.corpus) == 4 and data.prompts == {second: "Find: "}
    assert data.lines == {first: 1, second: 2}


def test_teacher_scores_are_kept_and_positives_get_grade_one(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [{"query": "q", "pos": ["a", "b"], "pos_scores": [0.9, 0.7], "neg": ["c"], "neg_scores": [0.2]}],
    )
    data = read_flagembedding(path)
    (query_id,) = data.queries
    assert {j.grade for j in data.qrels[query_id].values()} == {1}
    assert data.scores[query_id] == {passage_id("a"): 0.9, passage_id("b"): 0.7, passage_id("c"): 0.2}


def test_lines_without_a_positive_repeats_and_overlaps_are_counted(tmp_path: Path, caplog) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"query": "q", "pos": ["a"], "neg": ["a", "b", "b"]},
            {"query": "q", "pos": ["c"]},
            {"query": "nothing relevant", "pos": [], "neg": ["d"]},
        ],
    )
    caplog.set_level(logging.WARNING)
    data = read_flagembedding(path)
    assert data.skipped_without_positive == 1 and data.repeated_queries == 1
    assert data.negatives_that_are_positives == 1
    assert len(data.queries) == 2 and len(set(data.queries.values())) == 1  # the repeated query: two queries
    first = next(iter(data.queries))
    assert data.negatives[first] == [passage_id("b")]
    assert "skipped 1 lines without a positive (line 3: nothing relevant)" in caplog.text
    assert "1 lines repeat the query of an earlier line" in caplog.text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"pos": ["a"]}', "c.jsonl:2: 'query' must be a non-empty text"),
        ('{"query": "q"}', "c.jsonl:2: no 'pos'"),
        ('{"query": "q", "pos": "a"}', "c.jsonl:2: 'pos' must be a list of texts, not one text"),
        ('{"query": "q", "pos": ["a", 3]}', "c.jsonl:2: 'pos' must be a list of texts"),
        ('{"query": "q", "pos": ["a", " "]}', "c.jsonl:2: 'pos' item 1 is empty"),
        ('{"query": "q", "pos": ["a"], "pos_scores": [1, 2]}', "c.jsonl:2: 'pos_scores' has 2 numbers for 1 'pos'"),
        ('{"query": "q", "pos": ["a"], "neg": ["b"], "neg_scores": ["x"]}', "'neg_scores' must be a list of numbers"),
        ('{"query": "q", "pos": ["a"], "prompt": 1}', "c.jsonl:2: 'prompt' must be a text"),
        ('{"query": "q", "pos": ["a"]', "c.jsonl:2: invalid JSON"),
    ],
)
def test_bad_lines_are_reported_at_their_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"query": "fine", "pos": ["x"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_flagembedding(path)


def test_a_file_without_any_positive_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "none.jsonl", [{"query": "q", "pos": [], "neg": ["a"]}])
    with pytest.raises(DataFormatError, match="no line has a positive passage"):
        read_flagembedding(path)
    with pytest.raises(DataFormatError, match="no such file"):
        read_flagembedding(tmp_path / "missing.jsonl")


def _tiny_flagembedding(path: Path) -> Path:
    from tests.conftest import TINY_WORDS

    rng = random.Random(11)
    records = []
    for _ in range(10):
        topic = rng.sample(TINY_WORDS[8:], 3)
        records.append(
            {
                "query": " ".join(topic),
                "pos": [" ".join(topic + rng.sample(TINY_WORDS, 3)) for _ in range(3)],
                "pos_scores": [3, 2, 1],
                "neg": [" ".join(rng.sample(TINY_WORDS, 6)) for _ in range(2)],
            }
        )
    return write_jsonl(path, records)


def test_the_file_becomes_a_cached_beir_directory(tmp_path: Path, monkeypatch) -> None:
    from mpretriever.data import BeirDataset, resolve_dataset
    from mpretriever.data.flagembedding import default_negatives
    from mpretriever.data.negatives import load_negatives

    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    path = _tiny_flagembedding(tmp_path / "tiny.jsonl")
    directory = resolve_dataset(path)
    assert directory.parent == tmp_path / "cache" / "datasets" / "flagembedding"
    data, dataset = read_flagembedding(path), BeirDataset(directory)
    assert len(dataset.corpus) == len(data.corpus) and dataset.queries == data.queries
    qrels = dataset.qrels("train")
    assert {q: {d: j.grade for d, j in judged.items()} for q, judged in qrels.items()} == {
        q: {d: j.grade for d, j in judged.items()} for q, judged in data.qrels.items()
    }
    negatives = load_negatives(default_negatives(directory), dataset.queries, dataset.doc_index)
    assert negatives == {q: n for q, n in data.negatives.items() if n}
    written = (directory / "corpus.jsonl").stat().st_mtime_ns
    assert resolve_dataset(path) == directory and (directory / "corpus.jsonl").stat().st_mtime_ns == written
    with path.open("a", encoding="utf-8") as handle:  # another content: another directory, the first one kept
        handle.write(json.dumps({"query": "new", "pos": ["new passage"]}) + "\n")
    assert resolve_dataset(path) != directory and directory.is_dir()
    assert default_negatives(SHARED_DATA / "nfcorpus") is None  # a BEIR dataset's own directory has none


def test_mpr_train_takes_a_flagembedding_file_and_its_negatives(
    tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from mpretriever.model.manifest import RunManifest
    from tests.cli.test_cli import run_cli

    monkeypatch.setenv("MPR_CACHE_DIR", str(tmp_path / "cache"))
    path = _tiny_flagembedding(tmp_path / "tiny.jsonl")
    arguments = [
        "train", "--data", str(path), "--model", str(tiny_model_dir), "--output", str(tmp_path / "run"),
        "--max-steps", "2", "--per-device-train-batch-size", "4", "--group-size", "3", "--min-grade", "2",
    ]  # fmt: skip
    code, _, err = run_cli(arguments, capsys, monkeypatch)
    assert code == 0, err
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.hyperparameters["negatives"].endswith("negatives.jsonl")
    assert manifest.hyperparameters["global_steps"] == 2
