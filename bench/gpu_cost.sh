#!/usr/bin/env bash
# The cost of a training step and of scoring a row on one GPU, A-LLMRec's against TALLRec's, for the cost table
# beside the paper's Table 10 (docs/results.md). Runs where torch is installed but neither Kedro nor MLflow (the
# device tool's H200), on SmolLM2-135M's exact shape with random weights (its GGUF is over what a device call
# carries): timings only, no figure of quality. One JSON file per model in $OUT.
#
# Prepare here, once (ignored by git; they travel as the device tool's `carry`):
#   .venv/bin/python bench/llm_config.py .gpu/llm
#   copy the newest item_index and items versions under .gpu/root/data/... (their paths as in data/)
#   .whl/: transformers 5.24+ (and the huggingface_hub it needs), pydantic and peft wheels (see bench/gpu_check.sh)
# Then: bash bench/gpu_cost.sh   (OUT, BATCH_SIZES, STEPS, PYTHON override the defaults)
set -euo pipefail
OUT=${OUT:-bench/results/gpu}
BATCH_SIZES=${BATCH_SIZES:-4,32}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-python3}
source "$(dirname "$0")/_gpu_setup.sh"  # checks .gpu, installs .whl, sets PYTHONPATH and SITE
"$PYTHON" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
common=(--root .gpu/root --llm-config .gpu/llm --dtypes bfloat16 --batch-sizes "$BATCH_SIZES" --steps "$STEPS" --threads 8)
# A-LLMRec's step: the head over the titles' hidden states after 12 of the 30 layers (the default's reader)
"$PYTHON" bench/stage2.py "${common[@]}" --objective embedding_head --head-layer 12 --head-reads titles \
  --out "$OUT/cost_a_llmrec_bf16.json"
# TALLRec's: titles-only prompts, LoRA adapters, listwise over the candidates' title log-likelihoods (all layers)
"$PYTHON" bench/stage2.py "${common[@]}" --variant tallrec --out "$OUT/cost_tallrec_bf16.json"
