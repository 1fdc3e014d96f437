# Shared set-up of the GPU scripts (bench/gpu_check.sh, bench/gpu_cost.sh), sourced after they set OUT and
# PYTHON: checks the prepared .gpu folder, installs the carried wheels (.whl) into /tmp/site (SITE), puts src and
# them on PYTHONPATH, and records the GPU in $OUT/gpu.csv.
mkdir -p "$OUT"
for needed in .gpu/llm/config.json .gpu/root/data; do
  [ -e "$needed" ] || { echo "$(basename "$0" .sh): $needed is missing: prepare it as this script's header says" >&2; exit 2; }
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
