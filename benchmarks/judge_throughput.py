"""Throughput of the local relevance judge of ``mpr annotate`` (SmolLM2-135M-Instruct by default) on this machine.

Judges the same NFCorpus (query, passage) pairs at each batch size and precision, and prints judgements per
second, the share of the prompt tokens that are padding, and the share of the machine's own matmul rate the
judge reaches: the FLOPs it must do (2 x the decoder's non-embedding parameters per real prompt token; attention
is small at these lengths) over the seconds it took, against a large matmul measured here in the same precision.
Judging only, after warm-up; model loading excluded. Prints a table; asserts nothing.

    python benchmarks/judge_throughput.py --data nfcorpus --pairs 64 --batch-sizes 1 8 16 --dtypes float32 bfloat16
"""

from __future__ import annotations

import argparse
import os
import random
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a size^3 matmul in ``dtype`` on this machine (best of ``repeats``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def sample_pairs(data: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    from mpretriever.data import BeirDataset, passage_text, resolve_dataset

    dataset = BeirDataset(resolve_dataset(data))
    qrels = dataset.qrels("train")
    rng = random.Random(seed)
    pairs = rng.sample([(q, d) for q, docs in sorted(qrels.items()) for d in sorted(docs)], count)
    rows = dataset.corpus.select([dataset.doc_index[d] for _, d in pairs])
    passages = [passage_text(title, text) for title, text in zip(rows["title"], rows["text"], strict=True)]
    return [dataset.queries[q] for q, _ in pairs], passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="nfcorpus")
    parser.add_argument("--judge", default=None, help="model of the judge (default: the packaged SmolLM2)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=list(DTYPES))
    parser.add_argument("--passage-max-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from mpretriever.annotation.local_judge import LocalLMJudge

    queries, passages = sample_pairs(args.data, args.pairs, args.seed)
    print(
        f"{args.pairs} NFCorpus train pairs, passages cut to {args.passage_max_tokens} tokens, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'dtype':9} {'batch':>5} {'judgements/s':>13} {'padding':>8} {'GFLOP/s':>8} {'matmul GFLOP/s':>15} "
        f"{'share':>6}"
    )
    for dtype in args.dtypes:
        peak = matmul_rate(DTYPES[dtype])
        for batch_size in args.batch_sizes:
            judge = LocalLMJudge(
                model=args.judge, batch_size=batch_size, dtype=dtype, passage_max_tokens=args.passage_max_tokens
            )
            judge.warm_up()
            decoder = judge._model.get_decoder()  # the vocabulary projection runs on each prompt's last token only
            parameters = sum(p.numel() for name, p in decoder.named_parameters() if "embed" not in name)
            prompts = judge.prompts(queries, passages)
            lengths = sorted(len(judge._tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
            padded = sum(
                max(lengths[i : i + batch_size]) * len(lengths[i : i + batch_size])
                for i in range(0, len(lengths), batch_size)
            )
            judge.run(queries=queries[:batch_size], passages=passages[:batch_size])  # warm caches
            started = time.perf_counter()
            judge.run(queries=queries, passages=passages)
            seconds = time.perf_counter() - started
            flops = 2 * parameters * sum(lengths)
            print(
                f"{dtype:9} {batch_size:5d} {args.pairs / seconds:13.2f} {1 - sum(lengths) / padded:8.1%} "
                f"{flops / seconds / 1e9:8.1f} {peak / 1e9:15.1f} {flops / seconds / peak:6.1%}"
            )


if __name__ == "__main__":
    main()
