#!/usr/bin/env bash
# GPU checks on a machine that has torch but neither Kedro nor MLflow (the device tool's H200): the CF
# backbone's loop on the GPU and on that machine's CPU side by side (bench/cf_device.py), then bench/stage2.py at
# several batch sizes, in bf16, for the default head's reader and the token-level one, with samples/s, model FLOP
# utilisation and the no-grad scoring rate. One JSON file per bench run in $OUT.
#
# Prepare here, once (ignored by git; they travel as the device tool's `carry`):
#   .venv/bin/python bench/llm_config.py .gpu/llm     # SmolLM2's shape and tokenizer (the GGUF is too big)
#   copy the newest item_index, items, train_sequences and eval_candidates versions under .gpu/root/data/...
#   (their paths as in data/; bench/stage2.py and bench/cf_device.py take --root .gpu/root)
#   .whl/: transformers 5.24 and pydantic's wheels, where the machine's own are missing or older
# Then: bash bench/gpu_check.sh   (OUT, BATCH_SIZES, STEPS, PYTHON override the defaults; BUNDLE=1 leaves one
# archive, gpu_check.tgz, in OUT)
# BASELINE=DIR (a package tree, e.g. `git archive <commit> src | tar -x -C .gpu/baseline`) also times that code
# side by side, with the same bench script: files *_baseline.json.
set -euo pipefail
OUT=${OUT:-bench/results/gpu}
BATCH_SIZES=${BATCH_SIZES:-4,32,128,256}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-python3}
source "$(dirname "$0")/_gpu_setup.sh"  # checks .gpu, installs .whl, sets PYTHONPATH and SITE
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
if [ -d .gpu/root/data/05_model_input ] && "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  "$PYTHON" bench/cf_device.py --root .gpu/root --device cuda --epochs 4 --threads 8 --out "$OUT/cf_sasrec_cuda.json"
  "$PYTHON" bench/cf_device.py --root .gpu/root --device cpu --epochs 2 --threads 8 --out "$OUT/cf_sasrec_cpu.json"
fi
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
if [ -n "${BUNDLE:-}" ]; then  # one archive (the device tool brings back at most 8 files)
  tar -czf /tmp/gpu_check.tgz -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv /tmp/gpu_check.tgz "$OUT/"
fi
