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
        "--batch-size",
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
