"""Resuming continues the checkpoint's run or is refused with every difference listed; ``--overwrite`` leaves
nothing of the old run to resume and never empties a directory that is not a run; a temperature must be positive."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from mpretriever.model.manifest import RunManifest
from mpretriever.training import OutputExistsError, ResumeMismatchError, TrainConfig, checkpoints, train
from mpretriever.training.checkpoints import is_training_run, last_complete_checkpoint, remove_run
from tests.cli.test_cli import _tiny_args, run_cli
from tests.training.test_training import _config, _StopAt

STEPS = 4


@pytest.fixture(scope="module")
def checkpointed(tiny_beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """The config of a run of 4 steps stopped after its checkpoint-2 (tests resume copies of it)."""
    output = tmp_path_factory.mktemp("checkpointed") / "run"
    config = _config(tiny_beir, tiny_model_dir, output, max_steps=STEPS, save_steps=2)
    train(config, callbacks=[_StopAt(2)])
    assert last_complete_checkpoint(output) == output / "checkpoint-2"
    return config


def copy_of(config: TrainConfig, output: Path) -> TrainConfig:
    shutil.copytree(config.output, output)
    return replace(config, output=output)


def checkpoint_steps(output: Path) -> list[str]:
    return sorted(path.name for path in output.glob("checkpoint-*"))


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"loss": "infonce"}, 'loss: "lsepair" in the checkpoint vs "infonce" requested'),
        ({"learning_rate": 2e-3}, "learning_rate: 0.001 in the checkpoint vs 0.002 requested"),
        ({"per_device_train_batch_size": 2}, "per_device_train_batch_size: 4 in the checkpoint vs 2 requested"),
        ({"passage_max_length": 24}, "passage_max_length: 32 in the checkpoint vs 24 requested"),
        ({"temperature": 0.1}, "temperature: 0.05 in the checkpoint vs 0.1 requested"),
        ({"normalize_loss": False}, "normalize_loss: not recorded in the checkpoint vs false requested"),
        ({"max_steps": 8}, "max_steps: 4 in the checkpoint vs 8 requested"),
        ({"seed": 14}, "seed: 13 in the checkpoint vs 14 requested"),
        ({"split": "train-graded"}, 'split: "train" in the checkpoint vs "train-graded" requested'),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_resume_with_another_option_is_refused(checkpointed: TrainConfig, change: dict[str, Any], listed: str) -> None:
    with pytest.raises(ResumeMismatchError) as refused:
        train(checkpointed.with_options(resume=True, **change))
    message = str(refused.value)
    assert f"\n  {listed}" in message
    assert message.count(" in the checkpoint vs ") == 1, message
    assert checkpoint_steps(checkpointed.output) == ["checkpoint-2"]  # nothing trained, nothing written


def test_every_difference_is_listed_and_resume_from_is_checked_too(checkpointed: TrainConfig, tmp_path: Path) -> None:
    changed = checkpointed.with_options(
        loss="jointlh", learning_rate=2e-3, per_device_train_batch_size=2, passage_max_length=24
    )
    for request in (
        replace(changed, resume=True),
        replace(changed, output=tmp_path / "elsewhere", resume_from=checkpointed.output / "checkpoint-2"),
    ):
        with pytest.raises(ResumeMismatchError) as refused:
            train(request)
        lines = [line.strip() for line in str(refused.value).splitlines() if " in the checkpoint vs " in line]
        assert [line.split(":")[0] for line in lines] == [
            "learning_rate",
            "loss",
            "passage_max_length",
            "per_device_train_batch_size",
        ]
    assert not (tmp_path / "elsewhere").exists()


def test_resume_with_the_same_options_continues(checkpointed: TrainConfig, tmp_path: Path) -> None:
    """The same options (the default temperature asked explicitly counts as the same) and changes of saving,
    logging or GradCache chunking only: the run continues to its last step."""
    config = copy_of(checkpointed, tmp_path / "run")
    resumed = config.with_options(resume=True, temperature=0.05, save_steps=3, logging_steps=2, grad_cache=2)
    outcome = train(resumed)
    assert outcome.steps == STEPS
    manifest = RunManifest.load(config.output)
    assert manifest.hyperparameters["learning_rate"] == checkpointed.trainer["learning_rate"]
    assert manifest.hyperparameters["global_steps"] == STEPS


def test_resume_and_overwrite_together_are_refused(checkpointed: TrainConfig) -> None:
    with pytest.raises(ValueError, match="pass only one of them"):
        train(replace(checkpointed, resume=True, overwrite=True))


class _CrashAtStart(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        raise RuntimeError("crashed before the first checkpoint")


def test_a_crashed_overwrite_leaves_no_old_checkpoint_to_resume(checkpointed: TrainConfig, tmp_path: Path) -> None:
    config = copy_of(checkpointed, tmp_path / "run")
    with pytest.raises(RuntimeError, match="crashed before the first checkpoint"):
        train(config.with_options(overwrite=True, learning_rate=5e-4), callbacks=[_CrashAtStart()])
    assert list(config.output.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        train(replace(config, resume=True))


def test_an_overwrite_refused_before_training_keeps_the_old_run(checkpointed: TrainConfig, tmp_path: Path) -> None:
    config = copy_of(checkpointed, tmp_path / "run")
    with pytest.raises(ValueError, match="no training query has a positive"):
        train(replace(config, overwrite=True, min_grade=9))
    assert last_complete_checkpoint(config.output) == config.output / "checkpoint-2"


def test_overwrite_never_empties_a_run_that_holds_the_new_runs_model(checkpointed: TrainConfig, tmp_path: Path) -> None:
    config = copy_of(checkpointed, tmp_path / "run")
    checkpoint = config.output / "checkpoint-2"
    with pytest.raises(ValueError, match=r"holds this run's input .*checkpoint-2"):
        train(replace(config, model=str(checkpoint), overwrite=True))
    assert last_complete_checkpoint(config.output) == checkpoint


def test_overwrite_never_empties_a_directory_that_is_not_a_run(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="holds no training run"):
        train(_config(tiny_beir, tiny_model_dir, tmp_path, max_steps=1, overwrite=True))
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(OutputExistsError, match="is a file"):
        train(_config(tiny_beir, tiny_model_dir, tmp_path / "notes.txt", max_steps=1, overwrite=True))


def test_a_removal_killed_halfway_leaves_nothing_resumable(
    checkpointed: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = copy_of(checkpointed, tmp_path / "run").output
    removed: list[str] = []
    rmtree = shutil.rmtree

    def rmtree_then_die(path: Path) -> None:
        """The first directory is removed, the process dies at the second."""
        if removed:
            raise RuntimeError("killed")
        removed.append(Path(path).name)
        rmtree(path)

    monkeypatch.setattr(checkpoints.shutil, "rmtree", rmtree_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        remove_run(output)
    assert len(removed) == 1 and last_complete_checkpoint(output) is None
    assert is_training_run(output)  # the next --overwrite finishes the job
    monkeypatch.undo()
    remove_run(output)
    assert list(output.iterdir()) == []


@pytest.mark.parametrize("temperature", [0.0, -0.05, float("nan"), float("inf")])
def test_a_temperature_must_be_a_positive_number(temperature: float, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        TrainConfig(data="nfcorpus", output=tmp_path, temperature=temperature)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate must be a positive number, got 0.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive number"),
        ({"num_train_epochs": 0.0}, "num_train_epochs must be a positive number"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be a positive number"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be a positive number"),
        ({"warmup_steps": -0.1}, "warmup_steps must be a number >= 0"),
        ({"weight_decay": float("inf")}, "weight_decay must be a number >= 0"),
        ({"max_steps": 0}, r"max_steps must be -1 \(use num_train_epochs\) or at least 1, got 0"),
        ({"max_steps": -5}, "max_steps must be -1"),
    ],
)
def test_numbers_no_training_can_use_are_refused(option: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_options(data="nfcorpus", output=tmp_path, **option)
    TrainConfig.from_options(
        data="nfcorpus", output=tmp_path, max_steps=-1, warmup_steps=0.0, weight_decay=0.0
    )  # edges


@pytest.mark.parametrize(
    "option",
    [
        ("--temperature", "0"),
        ("--temperature", "-1"),
        ("--learning-rate", "0"),
        ("--max-steps", "0"),
        ("--num-train-epochs", "-1"),
    ],
)
def test_the_cli_refuses_numbers_no_training_can_use(
    option: tuple[str, str], tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    args = _tiny_args(tiny_beir, tiny_model_dir, tmp_path / "run", f"{option[0]}={option[1]}")
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 2, out + err
    assert " must be " in out + err and "Traceback" not in out + err
    assert not (tmp_path / "run").exists()


def test_the_cli_refuses_a_resume_with_another_learning_rate(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    args = _tiny_args(tiny_beir, tiny_model_dir, tmp_path / "run", "--save-steps", "1")
    assert run_cli(args, capsys, monkeypatch)[0] == 0
    code, out, err = run_cli([*args, "--resume", "--learning-rate", "1e-3"], capsys, monkeypatch)
    assert code == 2, out + err
    assert "learning_rate: 0.0001 in the checkpoint vs 0.001 requested" in out + err
    state = json.loads((tmp_path / "run" / "checkpoint-2" / "trainer_state.json").read_text(encoding="utf-8"))
    assert state["global_step"] == 2


def test_an_option_added_after_the_checkpoint_matches_only_at_its_default(
    checkpointed: TrainConfig, tmp_path: Path
) -> None:
    """A checkpoint written before --queries-from existed does not record it: resuming without the option (its
    default, the old behaviour) continues; resuming with it is refused."""
    config = copy_of(checkpointed, tmp_path / "run")
    for manifest_path in config.output.glob("checkpoint-*/mpretriever.json"):
        written = json.loads(manifest_path.read_text())
        del written["label_filter"]["queries_from"]
        manifest_path.write_text(json.dumps(written))
    labels = tmp_path / "some.tsv"
    labels.write_text("query-id\tcorpus-id\tscore\nq0\td0-0\t1\n")
    with pytest.raises(ResumeMismatchError, match="queries_from: not recorded in the checkpoint vs "):
        train(config.with_options(resume=True, queries_from=labels))
    assert train(config.with_options(resume=True)).steps == STEPS
