"""Two conditions of one study, paired on the test queries: per-query values averaged over the given seeds.

    python eval/paired-conditions.py runs/recipe-seeds-nfcorpus-dev128 grade-3-epochs-4 all-grades --seed 42 --seed 43

Prints, for each measure, both means, the difference (second condition minus first) and the paired t-test's p-value.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpretriever.evaluation.retrieval import per_query_file
from mpretriever.evaluation.significance import paired_test
from mpretriever.study.report import mean_per_query
from mpretriever.study.runner import SEARCH_MODE, EvaluatedModel, run_directory

MEASURES = ("nDCG@10", "Recall@100", "MRR@10", "MAP@100")


def averaged_over_seeds(study: Path, condition: str, objective: str, seeds: list[int]) -> dict[str, dict[str, float]]:
    runs = []
    for seed in seeds:
        per_query_path = run_directory(study, condition, objective, seed) / "eval" / per_query_file(SEARCH_MODE)
        if not per_query_path.is_file():
            raise SystemExit(
                f"{per_query_path}: no evaluation of {condition} / {objective} / seed {seed} (run the study first)"
            )
        runs.append(EvaluatedModel(condition, objective, seed, means={}, per_query_path=per_query_path))
    return mean_per_query(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="study directory (mpr study --output)")
    parser.add_argument("first", help="the condition compared against")
    parser.add_argument("second", help="the condition compared")
    parser.add_argument("--objective", default="lsepair")
    parser.add_argument("--seed", type=int, action="append", help="repeatable [default: 42, 43, 44]")
    args = parser.parse_args()
    seeds = args.seed or [42, 43, 44]
    first = averaged_over_seeds(args.study, args.first, args.objective, seeds)
    second = averaged_over_seeds(args.study, args.second, args.objective, seeds)
    for measure in MEASURES:
        comparison = paired_test(first, second, measure)
        print(
            f"{measure}: {args.first} {comparison.baseline_mean:.4f}, {args.second} {comparison.system_mean:.4f}, "
            f"difference {comparison.difference:+.4f}, p {comparison.p_value:.2g} "
            f"({comparison.queries} queries, seeds {seeds})"
        )


if __name__ == "__main__":
    main()
