#!/usr/bin/env bash
# Instructions per request of podium's own request path, counted by callgrind: repeatable on a noisy
# VM where CPU-time figures move by 10-20 % between runs (valgrind counts instructions, not time).
#
#   benchmarks/instructions.sh [minimal|bare|full] [ns|st]      # default: full ns
#
# Starts the shared harness's nginx fake upstream on $UPSTREAM_PORT (18090), writes the same config
# as benchmarks/shared_harness.sh, then runs benchmarks/request_driver.py under callgrind twice
# (N1 and N2 requests after the same warm-up); (Ir(N2) - Ir(N1)) / (N2 - N1) removes start-up and
# shutdown. Both runs go in parallel; expect 2-4 minutes.
set -euo pipefail
MODE=${1:-full}
SCEN=${2:-ns}
HARNESS=${HARNESS:-/work/shared/bench}
UPSTREAM_PORT=${UPSTREAM_PORT:-18090}
N1=${N1:-100}
N2=${N2:-700}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$ROOT/.venv/bin/python
WORK=$(mktemp -d /tmp/podium-instr-XXXXXX)
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
sed -e "s#@LISTEN@#127.0.0.1:${UPSTREAM_PORT}#" \
    -e "s#@ECHO_MODULE@#/usr/lib/nginx/modules/ngx_http_echo_module.so#" \
    "$HARNESS/upstream/nginx.conf.template" >"$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" &
NGINX=$!
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$WORK"' EXIT
# Each run gets its own configuration and database, created (migrated) before it is counted: two
# runs on one new database would both migrate it at start, racing for SQLite's lock.
prepare() {
    local dir="$WORK/$1"
    mkdir -p "$dir"
    "$PY" - "$MODE" "http://127.0.0.1:$UPSTREAM_PORT/v1" "$dir" >"$dir/config.yaml" <<'PY'
import json, sys
from pathlib import Path
from podium.cli.bench import _config
print(json.dumps(_config(sys.argv[1], sys.argv[2], Path(sys.argv[3]), 1, 1), indent=1))
PY
    if [ "${MODE#full}" = "$MODE" ]; then
        "$ROOT/.venv/bin/podium" keys list --config "$dir/config.yaml" >/dev/null
        echo sk-bench-dummy-key >"$dir/key"
    else
        "$ROOT/.venv/bin/podium" keys create --tenant default --quiet --config "$dir/config.yaml" |
            tail -n 1 >"$dir/key"
    fi
}
FLAG=""; [ "$SCEN" = st ] && FLAG=--stream
# Under valgrind a request takes ~50x longer, so work that follows the wall clock (the record writer's
# timed flushes, the config watchers' polls, the health probes) would be counted as if each request
# caused it, more so the slower the machine. Here it does not run: the writer writes full batches
# only (and what is left at shutdown), a fixed number per run, and nothing polls.
export PODIUM_STORAGE__FLUSH_INTERVAL=3600 PODIUM_CONFIG_STORE__WATCH_INTERVAL=3600 \
    PODIUM_PERFORMANCE__HEALTH_CHECK_INTERVAL=3600
count() {
    local dir="$WORK/$1"
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg" \
        "$PY" "$ROOT/benchmarks/request_driver.py" "$dir/config.yaml" "$(cat "$dir/key")" "$1" $FLAG \
        >/dev/null 2>&1
    grep -E "^(summary|totals):" "$dir/cg" | head -1 | awk '{print $2}'
}
prepare "$N1"
prepare "$N2"
cd "$WORK"
count "$N1" >"$WORK/a" &
FIRST=$!
count "$N2" >"$WORK/b"
wait "$FIRST"  # not a bare wait: nginx runs in the background too
A=$(cat "$WORK/a"); B=$(cat "$WORK/b")
echo "podium $MODE $SCEN: $(( (B - A) / (N2 - N1) )) instructions per request (callgrind, in process, no uvicorn)"
