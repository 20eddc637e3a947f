#!/usr/bin/env bash
# Run the shared cross-gateway harness (/work/shared/bench/run.sh) against `podium serve`.
#
#   benchmarks/shared_harness.sh minimal       # no auth, no limits/budgets, no request log or audit per request
#   benchmarks/shared_harness.sh bare          # no auth, no limits/budgets (the SQLite request log stays on)
#   benchmarks/shared_harness.sh full          # API key, tenant rate limit, daily budget, SQLite request log
#   benchmarks/shared_harness.sh full-redis    # full, with limits/budgets/ledger in Redis (REDIS_URL)
#   EXTRA="litellm" benchmarks/shared_harness.sh bare   # also LiteLLM (its recipe) in the same run
#
# podium is started here, pointed at the harness's nginx upstream (127.0.0.1:18080, which run.sh
# starts), and handed to run.sh by URL with GW_PID so CPU and memory are read from /proc.
# Knobs: HARNESS (/work/shared/bench), PORT (18200), and every run.sh knob (DURATION, MODES, ...).
set -euo pipefail
MODE=${1:-bare}
HARNESS=${HARNESS:-/work/shared/bench}
PORT=${PORT:-18200}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PODIUM=${PODIUM:-$ROOT/.venv/bin/podium}
WORK=$(mktemp -d /tmp/podium-harness-XXXXXX)
UPSTREAM=http://127.0.0.1:${UPSTREAM_PORT:-18080}/v1

"$ROOT/.venv/bin/python" - "$MODE" "$UPSTREAM" "$WORK" >"$WORK/config.yaml" <<'PY'
import json, sys
from pathlib import Path
from podium.cli.bench import _config
print(json.dumps(_config(sys.argv[1], sys.argv[2], Path(sys.argv[3]), 1, 1), indent=1))
PY
KEY=sk-bench-dummy-key
# Both commands create the database schema first, so every mode starts as on any start but the very
# first (which also runs the migrations: +0.2 s and +11 MiB of RSS that stays for the process's life).
if [ "${MODE#full}" != "$MODE" ]; then
    KEY=$("$PODIUM" keys create --tenant default --quiet --config "$WORK/config.yaml" | tail -n 1)
else
    "$PODIUM" keys list --config "$WORK/config.yaml" >/dev/null
fi
(cd "$WORK" && exec "$PODIUM" serve --config "$WORK/config.yaml" --port "$PORT" --log-level warning) \
    >"$WORK/podium.log" 2>&1 &
PID=$!
# On exit: stop podium (its writer drains on SIGTERM), then say whether it dropped any request-log or
# audit record during the run: a figure bought by losing records would not be a fair one.
finish() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    if grep -E "records dropped|records lost" "$WORK/podium.log" >&2; then
        echo "[podium] WARNING: records were dropped during this run (lines above)" >&2
    else
        echo "[podium] no request-log or audit record was dropped" >&2
    fi
    rm -rf "$WORK"
}
trap finish EXIT
for _ in $(seq 1 100); do
    curl -sf -o /dev/null -H "authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/models" && break
    sleep 0.1
done
# shellcheck disable=SC2086
# /healthz needs no key (the harness polls its health path without one); chat requests send $KEY.
GW_HEALTH_PATH=/healthz GW_PID=$PID BENCH_API_KEY=$KEY GW_VERSION="podium ($MODE)" "$HARNESS/run.sh" "http://127.0.0.1:$PORT" ${EXTRA:-}
