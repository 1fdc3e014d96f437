#!/usr/bin/env bash
# Stage-2 throughput on a GPU machine that has torch but neither Kedro nor MLflow (the device tool's H200):
# bench/stage2.py at several batch sizes, in bf16, for the default head's reader and the token-level one,
# with samples/s, model FLOP utilisation and the no-grad scoring rate. One JSON file per bench run in $OUT.
#
# Prepare here, once (ignored by git; they travel as the device tool's `carry`):
#   .venv/bin/python bench/llm_config.py .gpu/llm     # SmolLM2's shape and tokenizer (the GGUF is too big)
#   copy the newest item_index and items versions under .gpu/root/data/... (bench/stage2.py --root)
#   .whl/: transformers 5.24 and pydantic's wheels, where the machine's own are missing or older
# Then: bash bench/gpu_check.sh   (OUT, BATCH_SIZES, STEPS, PYTHON override the defaults)
# BASELINE=DIR (a package tree, e.g. `git archive <commit> src | tar -x -C .gpu/baseline`) also times that code
# side by side, with the same bench script: files *_baseline.json.
set -euo pipefail
OUT=${OUT:-bench/results/gpu}
BATCH_SIZES=${BATCH_SIZES:-4,32,128,256}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
for needed in .gpu/llm/config.json .gpu/root/data; do
  [ -e "$needed" ] || { echo "gpu_check: $needed is missing: prepare it as this script's header says" >&2; exit 2; }
done
SITE=""
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  SITE=/tmp/site
fi
export PYTHONPATH="src${SITE:+:$SITE}"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"
fi
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
for code in src ${BASELINE:+"$BASELINE"}; do
  suffix=$([ "$code" = src ] && echo "" || echo _baseline)
  for reads in titles title_tokens; do
    # the default's reader (12 of SmolLM2's 30 layers), then the token-level one
    PYTHONPATH="$code${SITE:+:$SITE}" "$PYTHON" bench/stage2.py --root .gpu/root --llm-config .gpu/llm \
      --dtypes bfloat16 --head-layer 12 --head-reads "$reads" --batch-sizes "$BATCH_SIZES" --steps "$STEPS" \
      --threads 8 --out "$OUT/stage2_${reads}_layer12_bf16${suffix}.json" \
      $([ -z "$suffix" ] && echo --profile "$OUT/profile_${reads}.txt")
  done
done
