"""A run killed with SIGKILL and resumed with ``--resume`` ends with the uninterrupted run's model; a checkpoint
half-written at the moment of the kill is never picked up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mpretriever.training.checkpoints import incomplete_reason, last_complete_checkpoint
from mpretriever.training.run import TrainConfig, train
from tests.training.test_training import _config

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 6
SAVE_STEPS = 2
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # float32 re-execution noise; observed differences are exactly 0


def config_for(data: Path, model: Path, output: Path) -> TrainConfig:
    """The tiny run of ``test_training``, 6 steps, a checkpoint every 2."""
    return _config(data, model, output, max_steps=STEPS, save_steps=SAVE_STEPS, save_total_limit=3, seed=5)


def final_weights(output: Path) -> dict[str, torch.Tensor]:
    files = [path for path in output.rglob("model.safetensors") if "checkpoint-" not in str(path)]
    assert len(files) == 1, files
    return load_file(str(files[0]))


@pytest.fixture(scope="module")
def uninterrupted(tiny_beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(config_for(tiny_beir, tiny_model_dir, output))
    return final_weights(output)


def killed_run(mode: str, tiny_beir: Path, tiny_model_dir: Path, output: Path) -> None:
    command = [sys.executable, "-m", "tests.training.kill_run", str(tiny_beir), str(tiny_model_dir), str(output)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([*command, mode, "4"], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]


def assert_same_model(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, **TOLERANCE, msg=name)


def test_killed_after_a_checkpoint_resumes_to_the_same_model(
    uninterrupted, tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    killed_run("after-checkpoint", tiny_beir, tiny_model_dir, output)
    assert incomplete_reason(output / "checkpoint-4") is None
    assert not (output / "mpretriever.json").exists()  # it died before the end
    assert last_complete_checkpoint(output) == output / "checkpoint-4"

    outcome = train(replace(config_for(tiny_beir, tiny_model_dir, output), resume=True))
    assert outcome.steps == STEPS
    assert_same_model(final_weights(output), uninterrupted)


def test_a_half_written_checkpoint_is_never_resumed(
    uninterrupted, tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, caplog
) -> None:
    output = tmp_path / "run"
    killed_run("while-saving", tiny_beir, tiny_model_dir, output)
    half_written = output / "checkpoint-4"
    assert (half_written / "model.safetensors").is_file() and not (half_written / "optimizer.pt").exists()
    assert "interrupted" in (incomplete_reason(half_written) or "")
    assert last_complete_checkpoint(output) == output / "checkpoint-2"
    assert "skipping incomplete checkpoint" in caplog.text

    train(replace(config_for(tiny_beir, tiny_model_dir, output), resume=True))
    assert_same_model(final_weights(output), uninterrupted)
    state = json.loads((output / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS


def test_truncated_trainer_state_and_explicit_resume_from(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint-8"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text('{"global_step": 8, "log_hi')
    assert "truncated" in (incomplete_reason(checkpoint) or "")
    (checkpoint / "trainer_state.json").write_text('{"global_step": 6}')
    assert "step 6, not 8" in (incomplete_reason(checkpoint) or "")
    config = replace(config_for(tmp_path, tmp_path, tmp_path / "out"), resume_from=checkpoint)
    with pytest.raises(FileNotFoundError, match="not a complete mpretriever checkpoint"):
        train(config)
