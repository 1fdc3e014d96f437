#!/usr/bin/env bash
# Screenshots of the two UIs a user meets, for the docs: kedro-viz's lineage (the whole chain and stage 2) and
# the MLflow UI (the runs table, a compare of the backbone runs, the default run's artifacts), from this
# project's latest runs. Run it after `make run` and two backbone runs (docs/tracking.md), whenever UI-facing
# config changes (layers, run names, tags, artifacts). Every process it starts is stopped when it ends.
#   scripts/screenshots.sh [OUT_DIR]          (default: docs/img/screenshots)
# Needs Debian's Chromium (`apt-get install chromium`; CHROMIUM names another binary); VIZ_PORT and UI_PORT pick
# the ports (4141, 5055).
set -euo pipefail

OUT=${1:-docs/img/screenshots}
BIN=${VENV:-.venv}/bin
VIZ_PORT=${VIZ_PORT:-4141}
UI_PORT=${UI_PORT:-5055}
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

fail() { echo "screenshots.sh: $*" >&2; exit 2; }
BROWSER=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$BROWSER" ] && [ -x "$BROWSER" ] || fail "no Chromium (${BROWSER:-not on PATH}; Debian: apt-get install chromium)"
[ -x "$BIN/kedro" ] || fail "no $BIN/kedro: run make install first"
[ -f mlflow.db ] || fail "no mlflow.db here: run make run (and two backbone runs) first"

# The runs to show: the newest default run, and the newest pretrain_cf run of each of two backbones.
read -r EXPERIMENT DEFAULT_RUN BACKBONE_RUNS < <(
    MLFLOW_TRACKING_URI=sqlite:///mlflow.db "$BIN/python" - <<'EOF'
import sys
import mlflow

client = mlflow.MlflowClient()
experiment = client.get_experiment_by_name("allmrec_pipeline")
if experiment is None:
    sys.exit("screenshots.sh: no experiment allmrec_pipeline in mlflow.db: run make run first")
def runs(pipeline):
    return client.search_runs(
        [experiment.experiment_id], f"tags.pipeline = '{pipeline}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
default = runs("default")
if not default:
    sys.exit("screenshots.sh: no finished default run: run make run first")
newest = {}
for run in runs("pretrain_cf"):
    newest.setdefault(run.data.tags.get("backbone"), run.info.run_id)
if len(newest) < 2:
    sys.exit("screenshots.sh: fewer than two backbone runs; run e.g. "
             "`kedro run --pipelines pretrain_cf --params backbone=gru4rec` (see docs/tracking.md)")
picked = list(newest.values())[:2]
print(experiment.experiment_id, default[0].info.run_id, ",".join(picked))
EOF
)
[ -n "${BACKBONE_RUNS:-}" ] || fail "could not pick the runs to show"

LOGS=$(mktemp -d)
groups=()
start() {  # a server in its own process group, so that stopping the group stops its children too
    setsid "$@" >"$LOGS/$(basename "$1").log" 2>&1 &
    groups+=($!)
}
stop() {
    for group in "${groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null || true; done
    for group in "${groups[@]}"; do wait "$group" 2>/dev/null || true; done
    rm -rf "$LOGS"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {  # URL, then the log to show when it never answers
    for _ in $(seq 1 180); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 1
    done
    tail -20 "$2" >&2
    fail "$1 did not answer within 180 s"
}

start "$BIN/kedro" viz run --host 127.0.0.1 --port "$VIZ_PORT" --no-browser
start "$BIN/mlflow" ui --backend-store-uri sqlite:///mlflow.db -h 127.0.0.1 -p "$UI_PORT"
wait_for "http://127.0.0.1:$VIZ_PORT/api/main" "$LOGS/kedro.log"
wait_for "http://127.0.0.1:$UI_PORT/health" "$LOGS/mlflow.log"

mkdir -p "$OUT"
capture() {  # PNG path, URL, window size: the page after its scripts settle (virtual time)
    "$BROWSER" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$LOGS/chromium" --window-size="$3" --virtual-time-budget=30000 \
        --screenshot="$1" "$2" >>"$LOGS/chromium.log" 2>&1 \
        || { tail -5 "$LOGS/chromium.log" >&2; fail "chromium could not capture $2"; }
}
shot() { capture "$OUT/$1.png" "$2" "$3" && echo "$OUT/$1.png"; }
VIZ="http://127.0.0.1:$VIZ_PORT"
UI="http://127.0.0.1:$UI_PORT"
# kedro-viz opens a guided tour on a browser's first visit: one visit first (same profile), not kept
capture "$LOGS/first_visit.png" "$VIZ/" 1600,1000
COMPARE_RUNS=$(printf '%s' "$BACKBONE_RUNS" | sed 's/\([0-9a-f]\{32\}\)/%22\1%22/g')
shot lineage "$VIZ/?pid=__default__" 1600,1000
shot lineage_stage2 "$VIZ/?pid=stage2" 1600,1000
shot mlflow_runs "$UI/#/experiments/$EXPERIMENT/runs" 1600,900
shot mlflow_backbone_compare "$UI/#/compare-runs?runs=%5B$COMPARE_RUNS%5D&experiments=%5B%22$EXPERIMENT%22%5D" 1600,1200
shot mlflow_run_artifacts "$UI/#/experiments/$EXPERIMENT/runs/$DEFAULT_RUN/artifacts" 1600,900
