#!/usr/bin/env bash
# Run a server command in its own process group and stop the whole group when this script is interrupted or
# terminated: `kedro viz run` serves from a child process that outlives its parent on SIGTERM.
#   scripts/stop_group.sh .venv/bin/kedro viz run
set -u
setsid "$@" &
pid=$!
stop() { kill -TERM -- "-$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT
wait "$pid"
