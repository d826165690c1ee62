"""End-to-end runs on real data with the default model. Slow: run with ``python -m pytest -m slow``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from mpretriever.model import RunManifest
from tests.conftest import SHARED_DATA


@pytest.mark.slow
def test_readme_training_command_on_nfcorpus(tmp_path: Path) -> None:
    if not (SHARED_DATA / "nfcorpus").is_dir():
        pytest.skip("shared data not available")
    script = Path(sys.executable).parent / "mpr"
    command = [
        str(script),
        "train",
        "--data",
        "nfcorpus",
        "--loss",
        "lsepair",
        "--output",
        str(tmp_path / "run"),
        "--per-device-train-batch-size",
        "16",
        "--group-size",
        "4",
        "--max-steps",
        "15",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = RunManifest.load(tmp_path / "run")
    assert manifest.hyperparameters["global_steps"] == 15 and manifest.train_samples == 2590
    model = SentenceTransformer(str(tmp_path / "run"))
    assert model.encode_query(["statins and breast cancer"]).shape == (1, 384)


@pytest.mark.slow
def test_readme_quickstart_beats_the_base_model(tmp_path: Path) -> None:
    """The README's main job (11-46 minutes on 2 CPU cores): the fine-tuned model beats its base in-domain."""
    if not (SHARED_DATA / "nfcorpus").is_dir():
        pytest.skip("shared data not available")
    import json

    script = Path(sys.executable).parent / "mpr"
    command = [str(script), "quickstart", "--data", "nfcorpus", "--output", str(tmp_path / "qs")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    base = json.loads((tmp_path / "qs" / "eval-base" / "metrics.json").read_text())["metrics"]["qdrant"]
    tuned = json.loads((tmp_path / "qs" / "eval-tuned" / "metrics.json").read_text())["metrics"]["qdrant"]
    assert tuned["nDCG@10"] > base["nDCG@10"]
    assert "nDCG@10" in result.stdout and "fine-tuned" in result.stdout
