"""eval/paired-conditions.py: two conditions of a study directory, averaged over seeds per query, paired."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from scipy import stats

from mpretriever.evaluation.retrieval import per_query_file
from mpretriever.evaluation.significance import save_per_query
from mpretriever.study.runner import SEARCH_MODE, run_directory

SCRIPT = Path(__file__).resolve().parents[2] / "eval" / "paired-conditions.py"
MEASURES = ("nDCG@10", "Recall@100", "MRR@10", "MAP@100")


def write_run(study: Path, condition: str, seed: int, values: dict[str, float]) -> None:
    directory = run_directory(study, condition, "lsepair", seed) / "eval"
    save_per_query(
        directory / per_query_file(SEARCH_MODE),
        {query: dict.fromkeys(MEASURES, value) for query, value in values.items()},
    )


def run_script(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True)


def test_conditions_are_averaged_over_seeds_per_query_then_paired(tmp_path: Path) -> None:
    first = {42: {"q1": 0.1, "q2": 0.4, "q3": 0.3}, 43: {"q1": 0.3, "q2": 0.2, "q3": 0.5}}
    second = {42: {"q1": 0.5, "q2": 0.6, "q3": 0.2}, 43: {"q1": 0.4, "q2": 0.9, "q3": 0.6}}
    for seed in (42, 43):
        write_run(tmp_path, "grade-3", seed, first[seed])
        write_run(tmp_path, "all-grades", seed, second[seed])
    # q4 is answered by one seed of the second condition only: a query every seed answered is compared, no other.
    write_run(tmp_path, "all-grades", 43, {**second[43], "q4": 1.0})

    result = run_script(tmp_path, "grade-3", "all-grades", "--seed", "42", "--seed", "43")

    assert result.returncode == 0, result.stderr
    first_mean = [0.2, 0.3, 0.4]
    second_mean = [0.45, 0.75, 0.4]
    expected_p = stats.ttest_rel(second_mean, first_mean).pvalue
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(MEASURES)
    for line in lines:
        match = re.search(
            r"grade-3 ([\d.]+), all-grades ([\d.]+), difference ([+-][\d.]+), p ([\d.e-]+) \((\d) queries", line
        )
        assert match, line
        assert match[1] == f"{sum(first_mean) / 3:.4f}"
        assert match[2] == f"{sum(second_mean) / 3:.4f}"
        assert match[3] == f"{(sum(second_mean) - sum(first_mean)) / 3:+.4f}"
        assert match[4] == f"{expected_p:.2g}"
        assert match[5] == "3"


def test_a_missing_run_is_named(tmp_path: Path) -> None:
    write_run(tmp_path, "grade-3", 42, {"q1": 0.1, "q2": 0.2})

    result = run_script(tmp_path, "grade-3", "all-grades", "--seed", "42")

    assert result.returncode != 0
    missing = run_directory(tmp_path, "all-grades", "lsepair", 42) / "eval" / per_query_file(SEARCH_MODE)
    assert f"{missing}: no evaluation of all-grades / lsepair / seed 42" in result.stderr
