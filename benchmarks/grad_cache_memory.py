"""Peak memory of one GradCache training step against uncached steps, with a real ``mpr train`` run each.

Each configuration runs a real training run of one step in its own process (model, optimizer, data and one
full update: forward + backward + AdamW) and reports the resident memory before the step, its high-water mark
during the step (Linux ``/proc/self/status`` VmHWM, reset at the step's start), the process's overall peak and the
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

from transformers import TrainerCallback


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class StepMemory(TrainerCallback):
    """Resident memory before the training step and its peak during the step (Linux: the peak is reset by
    writing 5 to /proc/self/clear_refs at the step's start)."""

    def __init__(self) -> None:
        self.before_mb = self.step_peak_mb = float("nan")

    def on_step_begin(self, args, state, control, **kwargs):
        Path("/proc/self/clear_refs").write_text("5")
        self.before_mb = _status_kib("VmRSS") / 1024

    def on_step_end(self, args, state, control, **kwargs):
        self.step_peak_mb = _status_kib("VmHWM") / 1024


def child(options: dict) -> None:
    """Run one training step (in this process) and print its memory figures and runtime as JSON."""
    from mpretriever.training.run import TrainConfig, train

    memory = StepMemory()
    outcome = train(TrainConfig.from_options(**{**options, "output": Path(options["output"])}), callbacks=[memory])
    result = {
        "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "before_step_mb": memory.before_mb,
        "step_peak_mb": memory.step_peak_mb,
        "runtime_s": outcome.manifest.train_runtime_s,
    }
    print("RESULT " + json.dumps(result), flush=True)


def measure(args: argparse.Namespace, batch_size: int, chunk: int | None, scratch: Path) -> dict:
    options = {
        "data": args.data,
        "output": str(scratch / f"run-{batch_size}-{chunk}"),
        "model": args.model,
        "loss": "lsepair",
        "per_device_train_batch_size": batch_size,
        "group_size": args.group_size,
        "query_max_length": args.query_max_length,
        "passage_max_length": args.passage_max_length,
        "max_steps": 1,
        "save_steps": 100_000,
        "grad_cache": chunk,
        "progress": False,
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(options)],
        capture_output=True,
        text=True,
        check=False,
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
            if row["step_peak_mb"] > cached["step_peak_mb"]:
                break

    print(f"\n{'step':<34} {'passages':>9} {'RSS before':>11} {'step peak':>10} {'process peak':>13} {'runtime s':>10}")
    for row in rows:
        name = f"{'GradCache chunk ' + str(row['chunk']) if row['chunk'] else 'uncached'}, {row['batch']} queries"
        print(
            f"{name:<34} {row['passages']:>9} {row['before_step_mb']:>11.0f} {row['step_peak_mb']:>10.0f} "
            f"{row['process_peak_mb']:>13.0f} {row['runtime_s']:>10.1f}"
        )
    print("(MB; 'step peak' is the resident-memory high-water mark during the training step)")
    fitting = [row for row in rows[1:] if row["step_peak_mb"] <= cached["step_peak_mb"]]
    if fitting:
        print(f"largest uncached batch within the GradCache step's peak: {fitting[-1]['batch']} queries")
    else:
        print("no uncached batch tried fits within the GradCache step's peak")


if __name__ == "__main__":
    main()
