"""The CPU encoding pool leaves nothing behind: no leaked semaphore warned about when the process exits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENCODE_WITH_TWO_WORKERS = """
import sys
from mpretriever.model.encoding_pool import cpu_pool
from mpretriever.model.bi_encoder import BiEncoder

if __name__ == "__main__":
    encoder = BiEncoder.from_pretrained(sys.argv[1])
    with cpu_pool(encoder, 2) as pool:
        vectors = encoder.encode(["alpha beta", "gamma"] * 8, "passage", batch_size=4, pool=pool)
    print(len(vectors))
"""


def test_stopping_the_pool_leaks_no_semaphore(tiny_model_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "encode.py"  # spawned workers re-import the main module: it must be a file
    script.write_text(ENCODE_WITH_TWO_WORKERS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), str(tiny_model_dir)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "16"
    assert "leaked semaphore" not in result.stderr
