"""How fast ``mpr`` answers when it has nothing to compute: the help, a command's help and an argument error.

Each command runs in a fresh interpreter (``python -m mpretriever.cli``, as the ``mpr`` script does) several
times; the table shows the fastest and the median wall time, the exit code, and the heavy libraries (torch,
Haystack, ...) the interpreter had loaded by then, which should be none. Prints; asserts nothing.

    python benchmarks/cli_startup.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "haystack", "qdrant_client", "datasets")

COMMANDS = {
    "mpr --help": ["--help"],
    "mpr train --help": ["train", "--help"],
    "mpr eval --no-such-option (argument error)": ["eval", "--no-such-option"],
}

# Runs the CLI as the console script does, then reports what it had imported (the CLI exits via SystemExit).
REPORTING_MAIN = f"""
import atexit, json, sys
atexit.register(lambda: print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]), file=sys.stderr))
from mpretriever.cli.app import main
sys.argv = ["mpr", *sys.argv[1:]]
main()
"""


def time_command(arguments: list[str], repeat: int) -> tuple[list[float], int, list[str]]:
    """Wall times of ``repeat`` runs, the exit code and the heavy modules loaded (of the last run)."""
    times, code, heavy = [], 0, []
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", REPORTING_MAIN, *arguments], capture_output=True, text=True, timeout=300
        )
        times.append(time.perf_counter() - started)
        code, heavy = result.returncode, json.loads(result.stderr.strip().splitlines()[-1])
    return times, code, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each command.")
    args = parser.parse_args()
    print(f"{'command':<46} {'fastest':>8} {'median':>8} {'exit':>5}  heavy modules loaded")
    for label, arguments in COMMANDS.items():
        times, code, heavy = time_command(arguments, args.repeat)
        print(
            f"{label:<46} {min(times):>7.2f}s {statistics.median(times):>7.2f}s {code:>5}  {', '.join(heavy) or 'none'}"
        )


if __name__ == "__main__":
    main()
