#!/usr/bin/env bash
# benches/embedded-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]: the embedded default of two asof
# builds, alternating, on the history benches/distributed.sh generated (in $ASOF_BENCH_DIR,
# default /tmp/asof-dist-bench; run that first): each build publishes the trees into a fresh
# data directory (first publish, median churn publish), then serves the index files and the
# apt-like mix with wrk -t2 -c64 for 10 s after a 3 s warm-up. Only 127.0.0.1 is contacted.
set -euo pipefail
BEFORE=${1:?usage: benches/embedded-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]}
AFTER=${2:?usage: benches/embedded-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]}
ROUNDS=${3:-2}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=${ASOF_BENCH_DIR:-/tmp/asof-dist-bench}
# shellcheck source=benches/lib/common.sh
. "$ROOT/benches/lib/common.sh"
[[ -d $W/gen && -s $W/tmp/mix.txt ]] || {
  echo "$W holds no history of benches/distributed.sh (run it first)" >&2
  exit 2
}
PORT=$("$ROOT/target/release/asof-bench" free-port 2>/dev/null || echo 18400)
for round in $(seq 1 "$ROUNDS"); do
  for pair in "before:$BEFORE" "after:$AFTER"; do
    name=${pair%%:*} bin=${pair#*:}
    rm -rf "$W/ab-$name"
    times=()
    for tree in "$W"/gen/[0-9][0-9][0-9][0-9]; do
      s=$(date +%s.%N)
      "$bin" --data "$W/ab-$name" publish bench "$tree" >/dev/null 2>&1
      times+=("$(elapsed "$s" "$(date +%s.%N)")")
    done
    churn=$(printf '%s\n' "${times[@]:1}" | median)
    echo "round $round $name publish: first ${times[0]} s, churn median $churn s"
    "$bin" --data "$W/embedded" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
    pid=$!
    sleep 1
    for test in small mix; do
      wrk -t2 -c64 -d3s -s "$ROOT/benches/lib/wrk-paths.lua" "http://127.0.0.1:$PORT" -- "$W/tmp/$test.txt" >/dev/null 2>&1
      wrk -t2 -c64 -d10s --latency -s "$ROOT/benches/lib/wrk-paths.lua" "http://127.0.0.1:$PORT" -- "$W/tmp/$test.txt" 2>&1 |
        sed -n 's/^WRKJSON //p' |
        jq -r --arg l "round $round $name $test" '"\($l): \(.requests / (.duration_us / 1e6) | floor) req/s p99 \(.p99_us / 1e3) ms"'
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
done
