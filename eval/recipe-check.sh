#!/usr/bin/env bash
# The default recipe of mpr train (no training option given but the dev set) on the other datasets, against the
# base model on their test splits (exact search). Results: eval/results/recipe-check.md.
#   MPR_DATA_MIRROR=../shared/data bash eval/recipe-check.sh [cranfield|scifact ...]
set -euo pipefail
out=${RECIPE_OUT:-runs/recipe-check}
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(cranfield scifact)
for dataset in "${datasets[@]}"; do
  case $dataset in
    cranfield) dev=(--dev-queries 30) ;;                                          # ~150 train queries, 1,400 passages
    scifact) dev=(--dev-queries 100 --dev-corpus pool --dev-pool-depth 20) ;;     # 809 train queries, 5,183 passages
    *) echo "unknown dataset $dataset" >&2; exit 2 ;;
  esac
  mpr train --data "$dataset" --split train "${dev[@]}" --output "$out/$dataset/model" --overwrite
  mpr eval --data "$dataset" --split test --output "$out/$dataset/eval-base" --overwrite
  mpr eval --data "$dataset" --split test --model "$out/$dataset/model" --output "$out/$dataset/eval-tuned" --overwrite
done
