"""Training throughput: ``mpr train`` (any objective) against sentence-transformers' MultipleNegativesRankingLoss.

Both run the Hugging Face Trainer on the same model, batch size, group size and maximum lengths, on the same
NFCorpus queries, one after the other in this process, and report passages per second of forward + backward +
update (the Trainer's ``train_runtime``, model loading and tokenisation excluded). Prints a table; asserts nothing.

    python benchmarks/train_throughput.py --data nfcorpus --batch-size 16 --group-size 4 --steps 6
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def run_mpretriever(args: argparse.Namespace, output: Path) -> float:
    from mpretriever.training import TrainConfig, train

    config = TrainConfig.from_options(
        data=args.data,
        output=output,
        loss=args.loss,
        model=args.model,
        per_device_train_batch_size=args.batch_size,
        group_size=args.group_size,
        max_positives=args.max_positives,
        max_steps=args.steps,
        query_max_length=args.query_max_length,
        passage_max_length=args.passage_max_length,
        save_steps=10_000,
        logging_steps=10_000,
        progress=False,
        seed=1,
    )
    return train(config).manifest.train_runtime_s


def run_sentence_transformers(args: argparse.Namespace, output: Path) -> float:
    import datasets
    from datasets.table import InMemoryTable
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from mpretriever.data import BeirDataset, passage_text, resolve_dataset
    from mpretriever.model import default_model_path

    dataset = BeirDataset(resolve_dataset(args.data))
    qrels = dataset.qrels("train")
    corpus = dataset.corpus
    rng = random.Random(1)
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    negative_columns = [f"negative_{i}" for i in range(args.group_size - 1)]
    for column in negative_columns:
        rows[column] = []
    for query_id in list(qrels)[: args.batch_size * args.steps]:
        positive = dataset.doc_index[next(iter(qrels[query_id]))]
        rows["anchor"].append(dataset.queries[query_id])
        rows["positive"].append(passage_text(corpus[positive]["title"], corpus[positive]["text"]))
        for column in negative_columns:
            row = corpus[rng.randrange(len(corpus))]
            rows[column].append(passage_text(row["title"], row["text"]))
    model = SentenceTransformer(args.model or default_model_path())
    model[0].query_length = args.query_max_length
    model.max_seq_length = args.passage_max_length
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(output),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=2e-5,
        warmup_steps=0.1,
        save_strategy="no",
        logging_steps=10_000,
        report_to="none",
        disable_tqdm=True,
        seed=1,
    )
    # an explicit fingerprint: hashing the rows is slow, and fails on some dill / pyarrow combinations
    train_dataset = datasets.Dataset(InMemoryTable.from_pydict(rows), fingerprint=f"mnrl-{len(rows['anchor'])}")
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        loss=MultipleNegativesRankingLoss(model),
    )
    return trainer.train().metrics["train_runtime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="nfcorpus")
    parser.add_argument("--model", default=None, help="default: the packaged all-MiniLM-L6-v2")
    parser.add_argument("--loss", default="lsepair")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-positives", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--query-max-length", type=int, default=32)
    parser.add_argument("--passage-max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side counts")
    args = parser.parse_args()

    passages = args.batch_size * args.group_size * args.steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(
        f"batch {args.batch_size} queries x group {args.group_size}, lengths {args.query_max_length}/"
        f"{args.passage_max_length}, {args.steps} steps, {passages} passages per run"
    )
    ours_runs, theirs_runs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        # alternate the order so that neither side always pays the process warm-up
        for round_index in range(args.rounds):
            if round_index % 2 == 0:
                ours_runs.append(run_mpretriever(args, Path(scratch) / f"mpr{round_index}"))
                theirs_runs.append(run_sentence_transformers(args, Path(scratch) / f"st{round_index}"))
            else:
                theirs_runs.append(run_sentence_transformers(args, Path(scratch) / f"st{round_index}"))
                ours_runs.append(run_mpretriever(args, Path(scratch) / f"mpr{round_index}"))
    ours, theirs = min(ours_runs), min(theirs_runs)
    print(
        "per round (s): mpretriever",
        [round(x, 1) for x in ours_runs],
        "sentence-transformers",
        [round(x, 1) for x in theirs_runs],
    )
    print(f"{'trainer (best round)':<44} {'seconds':>8} {'passages/s':>11}")
    print(f"{'mpretriever ' + args.loss:<44} {ours:>8.1f} {passages / ours:>11.2f}")
    print(f"{'sentence-transformers MNRL':<44} {theirs:>8.1f} {passages / theirs:>11.2f}")
    print(f"ratio mpretriever / sentence-transformers: {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
