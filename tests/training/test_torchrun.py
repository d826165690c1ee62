"""``torchrun`` launches ``mpr train`` on 2 CPU processes (gloo): one update equals the single-process update on
the concatenated batch (same loss, same weights), with and without GradCache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.test_distributed import free_port

TORCHRUN = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))


def train_args(tiny_beir: Path, tiny_model_dir: Path, output: Path, batch_size: int) -> list[str]:
    return [
        "train",
        "--data",
        str(tiny_beir),
        "--model",
        str(tiny_model_dir),
        "--output",
        str(output),
        "--loss",
        "lsepair",
        "--per-device-train-batch-size",
        str(batch_size),
        "--group-size",
        "4",
        "--max-positives",
        "2",
        "--query-max-length",
        "16",
        "--passage-max-length",
        "32",
        "--learning-rate",
        "1e-3",
        "--warmup-steps",
        "0",
        "--max-steps",
        "1",
        "--logging-steps",
        "1",
        "--seed",
        "13",
    ]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def outcome(output: Path) -> tuple[float, dict, dict[str, torch.Tensor]]:
    manifest = json.loads((output / "mpretriever.json").read_text())
    weights = load_file(str(next(output.rglob("model.safetensors"))))
    return manifest["final_train_loss"], manifest["hyperparameters"], weights


@pytest.fixture(scope="module")
def single_process(tiny_beir: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("single") / "run"
    run([sys.executable, "-m", "mpretriever.cli", *train_args(tiny_beir, tiny_model_dir, output, 4)], output.parent)
    return outcome(output)


@pytest.mark.parametrize("grad_cache", [None, 3])
def test_two_processes_make_the_single_process_update(
    grad_cache: int | None, single_process, tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    output = tmp_path / "run"
    launcher = [TORCHRUN, "--nnodes", "1", "--nproc-per-node", "2", "--master-port", str(free_port())]
    extra = ["--grad-cache", str(grad_cache)] if grad_cache else []
    command = [*launcher, "-m", "mpretriever.cli", *train_args(tiny_beir, tiny_model_dir, output, 2), *extra]
    result = run(command, tmp_path)
    assert result.stderr.count("saved") <= 1  # only the main process reports (and saves)
    loss, hyperparameters, weights = outcome(output)
    expected_loss, _, expected_weights = single_process
    assert hyperparameters["world_size"] == 2 and hyperparameters["grad_cache"] == grad_cache
    assert loss == pytest.approx(expected_loss, rel=1e-4)
    assert weights.keys() == expected_weights.keys()
    for name, tensor in expected_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_two_processes_select_the_same_best_checkpoint_on_a_dev_set(
    tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The first process evaluates and sends its figures to the other, so both keep the same checkpoint; the
    saved model is that checkpoint's."""
    output = tmp_path / "run"
    launcher = [TORCHRUN, "--nnodes", "1", "--nproc-per-node", "2", "--master-port", str(free_port())]
    dev = ["--dev-queries", "4", "--eval-steps", "1", "--save-steps", "1", "--max-steps", "2"]  # the last one counts
    run([*launcher, "-m", "mpretriever.cli", *train_args(tiny_beir, tiny_model_dir, output, 2), *dev], tmp_path)
    manifest = json.loads((output / "mpretriever.json").read_text())
    curve = manifest["dev_evaluation"]["curve"]
    assert [point["step"] for point in curve] == [0, 1, 2]
    kept = manifest["dev_evaluation"]["kept_step"]
    best = max(curve[1:], key=lambda point: point["nDCG@10"])["step"]
    assert kept == best
    saved = load_file(str(output / "model.safetensors"))
    checkpoint = load_file(str(output / f"checkpoint-{kept}" / "model.safetensors"))
    assert all(torch.equal(saved[name], checkpoint[name]) for name in checkpoint)
