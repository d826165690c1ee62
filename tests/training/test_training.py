"""Training runs of a tiny random BERT on a tiny dataset: the loss falls, runs are reproducible and resumable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import TrainerCallback

from mpretriever.model import RunManifest
from mpretriever.training import OBJECTIVES, OutputExistsError, TrainConfig, train


def _config(tiny_beir: Path, tiny_model_dir: Path, output: Path, **overrides: Any) -> TrainConfig:
    config = TrainConfig.from_options(
        data=str(tiny_beir),
        output=output,
        model=str(tiny_model_dir),
        per_device_train_batch_size=4,
        group_size=4,
        max_positives=2,
        query_max_length=16,
        passage_max_length=32,
        learning_rate=1e-3,
        warmup_steps=0,
        logging_steps=1,
        save_steps=1000,
        progress=False,
        seed=13,
    )
    return config.with_options(**overrides)


def _losses(output: Path) -> list[float]:
    import json

    state = json.loads(next(output.glob("checkpoint-*/trainer_state.json")).read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def _weights(output: Path) -> dict[str, torch.Tensor]:
    return load_file(output / "model.safetensors")


def test_loss_falls_and_the_run_is_saved(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    outcome = train(_config(tiny_beir, tiny_model_dir, tmp_path / "run", num_train_epochs=10, save_steps=30))
    assert outcome.steps == 30 and outcome.examples == 12
    losses = _losses(tmp_path / "run")
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, f"loss did not fall: {losses}"
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.loss == "lsepair" and manifest.split == "train" and manifest.train_samples == 12
    assert manifest.final_train_loss == pytest.approx(losses[-1])
    assert manifest.hyperparameters["temperature"] == 0.05
    assert manifest.hyperparameters["global_steps"] == 30
    SentenceTransformer(str(tmp_path / "run")).encode_query(["cancer cell"])


@pytest.mark.parametrize("loss", list(OBJECTIVES))
def test_every_objective_trains(loss: str, tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    outcome = train(_config(tiny_beir, tiny_model_dir, tmp_path / loss, loss=loss, max_steps=3))
    assert outcome.manifest.loss == loss
    assert outcome.manifest.final_train_loss is not None and outcome.manifest.final_train_loss > 0


def test_same_seed_gives_the_same_model(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    train(_config(tiny_beir, tiny_model_dir, tmp_path / "a", max_steps=4))
    train(_config(tiny_beir, tiny_model_dir, tmp_path / "b", max_steps=4))
    train(_config(tiny_beir, tiny_model_dir, tmp_path / "c", max_steps=4, seed=14))
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)


class _StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def test_resume_continues_to_the_same_model(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tiny_beir, tiny_model_dir, tmp_path / "full", max_steps=6, save_steps=3)
    train(config)
    interrupted = replace(config, output=tmp_path / "resumed")
    train(interrupted, callbacks=[_StopAt(3)])
    assert (tmp_path / "resumed" / "checkpoint-3").is_dir()
    outcome = train(replace(interrupted, resume=True))
    assert outcome.steps == 6
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "resumed")
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], atol=1e-5, rtol=1e-4)


def test_existing_output_is_never_overwritten_silently(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tiny_beir, tiny_model_dir, tmp_path / "run", max_steps=1)
    train(config)
    with pytest.raises(OutputExistsError, match="already exists and is not empty; pass --resume"):
        train(config)
    train(replace(config, overwrite=True))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        train(replace(config, output=tmp_path / "fresh", resume=True))


class _EpochSpy(TrainerCallback):
    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.epochs.append(train_dataloader.dataset.epoch)


def test_dataset_epoch_follows_the_trainer(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    spy = _EpochSpy()
    train(_config(tiny_beir, tiny_model_dir, tmp_path / "run", loss="rand1lh", num_train_epochs=3), callbacks=[spy])
    assert spy.epochs == [0, 1, 2]


def test_label_regime_and_loss_options_reach_the_manifest(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    outcome = train(
        _config(
            tiny_beir,
            tiny_model_dir,
            tmp_path / "run",
            split="train-graded",
            min_grade=3,
            max_steps=1,
            normalize_loss=True,
            positive_agg="min",
        )
    )
    manifest = outcome.manifest
    assert manifest.label_filter == {
        "min_grade": 3,
        "sources": None,
        "conflict": "max",
        "extra_qrels": [],
        "queries_from": None,
    }
    assert manifest.loss_options == {"normalize": True, "positive_agg": "min"}
    with pytest.raises(ValueError, match="loss 'summarglh' does not take normalize"):
        train(_config(tiny_beir, tiny_model_dir, tmp_path / "bad", loss="summarglh", normalize_loss=True))


def test_hard_negatives_file_fills_the_groups(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    negatives = tmp_path / "negatives.tsv"
    negatives.write_text("".join(f"q{q}\tn{(q + k) % 24}\n" for q in range(12) for k in range(3)))
    spy = _DatasetSpy()
    outcome = train(
        _config(tiny_beir, tiny_model_dir, tmp_path / "run", negatives=negatives, max_steps=2), callbacks=[spy]
    )
    assert outcome.manifest.hyperparameters["negatives"] == str(negatives)
    dataset = spy.dataset
    for index, example in enumerate(dataset.examples):
        assert len(example.hard_negatives) == 3
        group = dataset[index]["group"]
        assert set(group.passages) - set(example.positives) <= set(example.hard_negatives)


class _DatasetSpy(TrainerCallback):
    dataset: Any = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.dataset = train_dataloader.dataset


def test_training_on_a_noise_injected_qrels_file(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from mpretriever.data import BeirDataset
    from mpretriever.data.noise import inject_label_noise, write_qrels

    dataset = BeirDataset(tiny_beir)
    noisy = inject_label_noise(dataset.qrels("train"), 0.5, list(dataset.doc_index), seed=1)
    qrels_file = write_qrels(tmp_path / "noisy.tsv", noisy)
    outcome = train(_config(tiny_beir, tiny_model_dir, tmp_path / "run", max_steps=1, qrels_file=qrels_file))
    assert outcome.manifest.split == str(qrels_file)
    assert outcome.examples == len([q for q, js in noisy.items() if any(j.grade > 0 for j in js.values())])
