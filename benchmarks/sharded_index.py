"""Indexing throughput of `mpr index` in one process against two (torchrun, gloo) on this machine, same run.

Each configuration indexes the first N passages of a corpus with the packaged all-MiniLM-L6-v2 into a fresh
embedded Qdrant behind an alias, as a user would run it (a subprocess: model loading and start-up included, and
timed separately from the indexing by the wall time of a 1-passage run):

  * 1 process, torch using every core (``--workers 1``);
  * 1 process with sentence-transformers' pool of one encoding process per core (``--workers 2``);
  * ``torchrun --nproc-per-node 2``: two processes, one thread each, each encoding its own shard (process 0 writes,
    as the embedded Qdrant admits one writer).

    python benchmarks/sharded_index.py --data nfcorpus --docs 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="nfcorpus")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    mpr = [sys.executable, "-m", "mpretriever.cli", "index"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.processes)]
    torchrun += ["-m", "mpretriever.cli", "index"]
    configurations = {
        "1 process, all cores": (mpr, ["--workers", "1"], {}),
        f"1 process, pool of {args.processes}": (mpr, ["--workers", str(args.processes)], {}),
        f"torchrun, {args.processes} processes": (torchrun, [], {"OMP_NUM_THREADS": "1"}),
    }
    print(f"{args.docs} passages of {args.data}, all-MiniLM-L6-v2, embedded Qdrant, {os.cpu_count()} cores")
    print(f"{'configuration':28} {'start-up s':>10} {'indexing s':>10} {'passages/s':>10} {'ratio':>6}")
    baseline = None
    with tempfile.TemporaryDirectory() as scratch:
        for number, (name, (command, options, extra)) in enumerate(configurations.items()):
            run_env = {**env, **extra}
            base = ["--data", args.data, "--alias", "bench"]
            startup = timed([*command, *base, "--max-docs", "1", "--qdrant-path", f"{scratch}/s{number}", *options],
                            run_env)  # fmt: skip
            total = timed([*command, *base, "--max-docs", str(args.docs), "--qdrant-path", f"{scratch}/q{number}",
                           *options], run_env)  # fmt: skip
            indexing = max(total - startup, 1e-9)
            rate = args.docs / indexing
            baseline = baseline or rate
            print(f"{name:28} {startup:10.1f} {indexing:10.1f} {rate:10.1f} {rate / baseline:6.2f}")


if __name__ == "__main__":
    main()
