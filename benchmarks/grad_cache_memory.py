"""Peak memory of one GradCache training step against uncached steps, with a real ``mpr train`` run each.

Each configuration runs ``mpr train --max-steps 1`` in its own process (model, optimizer, data and one full
update, forward + backward + AdamW) and reports the process's peak resident memory (``ru_maxrss``) and the
Trainer's runtime. The uncached batches grow until one exceeds the GradCache step's peak, so the table shows the
largest uncached batch that fits in the memory GradCache needs for its (much larger) batch. Prints; asserts nothing.

    python benchmarks/grad_cache_memory.py --data nfcorpus --batch-size 256 --group-size 8 --chunk 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def child(arguments: list[str]) -> None:
    """Run one training step (in this process) and print its peak RSS and runtime as JSON."""
    from mpretriever.cli.app import app

    try:
        app(arguments, standalone_mode=False)
    finally:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        output = Path(arguments[arguments.index("--output") + 1])
        manifest = output / "mpretriever.json"
        runtime = json.loads(manifest.read_text())["train_runtime_s"] if manifest.is_file() else None
        print("RESULT " + json.dumps({"peak_rss_mb": peak_kib / 1024, "runtime_s": runtime}), flush=True)


def measure(args: argparse.Namespace, batch_size: int, chunk: int | None, scratch: Path) -> dict:
    output = scratch / f"run-{batch_size}-{chunk}"
    arguments = [
        "train",
        "--data",
        args.data,
        "--output",
        str(output),
        "--loss",
        "lsepair",
        "--batch-size",
        str(batch_size),
        "--group-size",
        str(args.group_size),
        "--query-max-length",
        str(args.query_max_length),
        "--passage-max-length",
        str(args.passage_max_length),
        "--max-steps",
        "1",
        "--save-steps",
        "100000",
    ]
    if args.model:
        arguments += ["--model", args.model]
    if chunk:
        arguments += ["--grad-cache", str(chunk)]
    result = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(arguments)], capture_output=True, text=True, check=False
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"run failed:\n{result.stderr[-3000:]}")
    measured = json.loads(line.removeprefix("RESULT "))
    return {"batch": batch_size, "chunk": chunk, "passages": batch_size * args.group_size, **measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", default="nfcorpus")
    parser.add_argument("--model", default=None, help="default: the packaged all-MiniLM-L6-v2")
    parser.add_argument("--batch-size", type=int, default=256, help="queries of the GradCache step")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=32, help="GradCache chunk (texts per forward pass)")
    parser.add_argument("--uncached", default="8,16,32,64", help="uncached batch sizes to try, ascending")
    parser.add_argument("--query-max-length", type=int, default=32)
    parser.add_argument("--passage-max-length", type=int, default=128)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        cached = measure(args, args.batch_size, args.chunk, Path(scratch))
        rows.append(cached)
        print(f"GradCache {args.batch_size} x {args.group_size}: {cached}", flush=True)
        for batch_size in (int(value) for value in args.uncached.split(",")):
            row = measure(args, batch_size, None, Path(scratch))
            rows.append(row)
            print(f"uncached {batch_size} x {args.group_size}: {row}", flush=True)
            if row["peak_rss_mb"] > cached["peak_rss_mb"]:
                break

    print(f"\n{'step':<34} {'passages':>9} {'peak RSS MB':>12} {'runtime s':>10}")
    for row in rows:
        name = f"{'GradCache chunk ' + str(row['chunk']) if row['chunk'] else 'uncached'}, {row['batch']} queries"
        runtime = f"{row['runtime_s']:.1f}" if row["runtime_s"] is not None else "-"
        print(f"{name:<34} {row['passages']:>9} {row['peak_rss_mb']:>12.0f} {runtime:>10}")
    fitting = [row for row in rows[1:] if row["peak_rss_mb"] <= cached["peak_rss_mb"]]
    if fitting:
        print(f"largest uncached batch within the GradCache step's memory: {fitting[-1]['batch']} queries")
    else:
        print("no uncached batch tried fits within the GradCache step's memory")


if __name__ == "__main__":
    main()
