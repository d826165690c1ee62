"""evaluate_retrieval: exact search scored by trec_eval, the same ranking through a local Qdrant, saved outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mpretriever.data import BeirDataset, passage_text
from mpretriever.evaluation.metrics import evaluate_run, mean_values, parse_measures
from mpretriever.evaluation.retrieval import EvalConfig, evaluate_retrieval
from mpretriever.evaluation.runs import read_run
from mpretriever.index import (
    CollectionMismatchError,
    QdrantSettings,
    collection_manifest,
    ensure_collection,
    index_corpus,
)
from mpretriever.model import BiEncoder
from mpretriever.search.ranking import trec_order
from mpretriever.training.run import OutputExistsError


@pytest.fixture(scope="module")
def qdrant_dir(tiny_run: Path, graded_beir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Qdrant with collection 'graded': the graded dataset's corpus, as is, indexed with ``tiny_run``."""
    path = tmp_path_factory.mktemp("eval-qdrant") / "qdrant"
    encoder = BiEncoder.from_pretrained(tiny_run)
    client = QdrantSettings(path=str(path)).connect()
    try:
        ensure_collection(client, "graded", collection_manifest(encoder, str(tiny_run)))
        index_corpus(encoder, BeirDataset(graded_beir).corpus, client, "graded", workers=1, show_progress=False)
    finally:
        client.close()
    return path


def test_exact_evaluation_scores_the_brute_force_ranking(tiny_run: Path, graded_beir: Path) -> None:
    report = evaluate_retrieval(
        EvalConfig(data=str(graded_beir), model=str(tiny_run), top_k=20, measures=["nDCG@10", "MRR@10", "P_5"])
    )
    # q10's only judgement is grade 0: left out, and counted
    assert (report.queries, report.judged_queries, report.without_relevant) == (10, 11, 1)
    (result,) = report.results
    assert result.mode == "exact" and set(result.run) == {f"q{i}" for i in range(10)}

    dataset = BeirDataset(graded_beir)
    encoder = BiEncoder.from_pretrained(tiny_run)
    corpus = dataset.corpus
    passages = encoder.model.encode_document(
        [passage_text(t, x) for t, x in zip(corpus["title"], corpus["text"], strict=True)], convert_to_tensor=True
    )
    brute_force = {}
    for query_id in result.run:
        scores = encoder.similarity(
            encoder.model.encode_query([dataset.queries[query_id]], convert_to_tensor=True), passages
        )
        brute_force[query_id] = trec_order(list(zip(corpus["_id"], scores[0].tolist(), strict=True)))[:20]
        assert [h.doc_id for h in result.run[query_id]] == [h.doc_id for h in brute_force[query_id]]
    qrels = {q: {d: j.grade for d, j in judged.items()} for q, judged in dataset.qrels("test").items()}
    measures = parse_measures(["nDCG@10", "MRR@10", "P_5"])
    expected = evaluate_run(qrels, brute_force, measures)
    assert result.per_query.keys() == expected.keys()
    for query_id, values in expected.items():
        assert result.per_query[query_id] == pytest.approx(values, abs=1e-6)
    assert result.means == pytest.approx(mean_values(expected, measures), abs=1e-6)
    assert report.fingerprint == encoder.fingerprint() and report.passage_max_length == 128


def test_qdrant_collection_gives_the_exact_ranking(tiny_run: Path, graded_beir: Path, qdrant_dir: Path) -> None:
    report = evaluate_retrieval(
        EvalConfig(
            data=str(graded_beir),
            collection="graded",
            exact=True,
            qdrant=QdrantSettings(path=str(qdrant_dir)),
            top_k=15,
            measures=["nDCG@10", "Recall@15", "MRR@10"],
        )
    )
    assert [r.mode for r in report.results] == ["exact", "qdrant"]
    assert report.model == str(tiny_run)  # the model the collection records
    exact, qdrant = report.result("exact"), report.result("qdrant")
    for query_id, hits in exact.run.items():
        through_qdrant = qdrant.run[query_id]
        assert [h.score for h in through_qdrant] == pytest.approx([h.score for h in hits], abs=1e-4)
        for ours, theirs in zip(through_qdrant, hits, strict=True):
            assert ours.doc_id == theirs.doc_id or abs(ours.score - theirs.score) < 1e-4  # near-ties may swap
    assert qdrant.means == pytest.approx(exact.means, abs=1e-6)
    assert report.difference() == pytest.approx(dict.fromkeys(exact.means, 0.0), abs=1e-6)


def test_collection_only_and_a_mismatched_model(tiny_model_dir: Path, graded_beir: Path, qdrant_dir: Path) -> None:
    settings = QdrantSettings(path=str(qdrant_dir))
    report = evaluate_retrieval(
        EvalConfig(data=str(graded_beir), collection="graded", qdrant=settings, top_k=10, measures=["MRR@10"])
    )
    assert [r.mode for r in report.results] == ["qdrant"] and report.fingerprint is not None
    with pytest.raises(CollectionMismatchError, match="was indexed with model"):
        evaluate_retrieval(
            EvalConfig(
                data=str(graded_beir),
                model=str(tiny_model_dir),
                collection="graded",
                qdrant=settings,
                top_k=10,
                measures=["MRR@10"],
            )
        )
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_retrieval(
            EvalConfig(data=str(graded_beir), collection="nope", qdrant=settings, measures=["MRR@10"], top_k=10)
        )


def test_outputs_are_written_and_never_overwritten_silently(
    tiny_run: Path, graded_beir: Path, tmp_path: Path, private_cache: Path
) -> None:
    config = EvalConfig(data=str(graded_beir), model=str(tiny_run), output=tmp_path / "out", max_queries=4, seed=1)
    report = evaluate_retrieval(config)
    assert report.sampled and report.queries == 4 and report.embeddings == "encoded, now cached"
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == ["metrics.json", "per-query-exact.json", "run-exact.trec"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out" / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["model"] == str(tiny_run) and summary["model_fingerprint"] == report.fingerprint
    assert (
        summary["dataset"] == graded_beir.name and summary["split"] == "test" and summary["search_modes"] == ["exact"]
    )
    assert summary["queries"] == 4 and summary["queries_without_relevant_excluded"] == 1
    assert summary["measures"]["MRR@10"] == "recip_rank on the run cut to its top 10"
    assert summary["metrics"]["exact"] == pytest.approx(report.results[0].means) and summary["wall_time_s"] > 0
    per_query = json.loads((tmp_path / "out" / "per-query-exact.json").read_text())
    assert per_query == report.results[0].per_query and len(per_query) == 4
    assert read_run(tmp_path / "out" / "run-exact.trec") == report.results[0].run
    assert list(private_cache.glob("embeddings/*.npy"))

    with pytest.raises(OutputExistsError, match="--overwrite"):
        evaluate_retrieval(config)
    again = evaluate_retrieval(EvalConfig(**{**config.__dict__, "overwrite": True}))
    assert (
        again.embeddings == "read from the cache" and again.results[0].means == report.results[0].means
    )  # same sample


def test_top_k_must_reach_the_deepest_cutoff(graded_beir: Path) -> None:
    with pytest.raises(ValueError, match="below the deepest cutoff requested \\(100\\)"):
        evaluate_retrieval(EvalConfig(data=str(graded_beir), top_k=50))


def test_no_cache_encodes_and_stores_nothing(tiny_run: Path, graded_beir: Path, private_cache: Path) -> None:
    report = evaluate_retrieval(
        EvalConfig(data=str(graded_beir), model=str(tiny_run), cache=False, measures=["MRR@10"], top_k=10)
    )
    assert report.embeddings == "encoded (cache off)"
    assert not (private_cache / "embeddings").exists()
