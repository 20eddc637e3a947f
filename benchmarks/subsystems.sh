#!/usr/bin/env bash
# What each subsystem costs per request, in callgrind instructions: benchmarks/instructions.sh run
# once as it is and once with each subsystem switched off (benchmarks/without/sitecustomize.py makes
# it return at once), the difference being that subsystem's share.
#
#   benchmarks/subsystems.sh [bare|full] [SUBSYSTEM ...]   # default: full, every subsystem
#
# Subsystems: records (request log + audit trail, built and written), writes (both written only),
# audit, request-log, ledger, metrics, health, timeouts. Each line takes one instructions.sh run
# (2-4 minutes). The counts move by 1-2 % between runs of the same code, so a difference under
# about 2 % of the total says "small", not how small.
set -euo pipefail
MODE=${1:-full}
shift || true
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL=(records writes audit request-log ledger metrics health timeouts)
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for name in "${NAMES[@]}"; do
    [[ " ${ALL[*]} " == *" $name "* ]] || { echo "unknown subsystem: $name (one of: ${ALL[*]})" >&2; exit 2; }
done
count() {
    "$ROOT/benchmarks/instructions.sh" "$MODE" ns | sed -E 's/.*: ([0-9]+) instructions.*/\1/'
}
BASE=$(count)
printf '%-12s %12s %12s %7s\n' "without" "instr/req" "saved" "share"
printf '%-12s %12d %12s %7s\n' "(nothing)" "$BASE" "-" "-"
for name in "${NAMES[@]}"; do
    N=$(PODIUM_BENCH_WITHOUT=$name PYTHONPATH="$ROOT/benchmarks/without${PYTHONPATH:+:$PYTHONPATH}" count)
    awk -v n="$name" -v b="$BASE" -v c="$N" 'BEGIN { printf "%-12s %12d %12d %6.1f%%\n", n, c, b - c, 100 * (b - c) / b }'
done
