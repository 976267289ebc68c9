#!/usr/bin/env bash
# benches/profile.sh ASOF_BINARY OUTDIR: perf profiles of the two hot paths of issue 13,
# for comparing builds (before/after):
#   serve-mix     `asof serve` under the wrk apt-like mix (random pool paths over every
#                 snapshot, exact and in-between IDs), PROFILE_SECS seconds
#   serve-small   `asof serve` under the small-files load (Release, InRelease, Packages.xz)
#   publish       one publish after PROFILE_CHURN churn of a PROFILE_P-package suite
#                 (with --changes FILE when ASOF_BINARY has the flag, else by tree walk)
# Each is `perf record -g`; OUTDIR gets NAME-top30.txt (`perf report --no-children --sort
# symbol`, the 30 first symbols by self time), NAME-top30-user.txt (the same, user space only),
# NAME-groups.txt (self time by kernel, SQLite, allocator, ...), NAME-report.txt (every
# symbol) and info.txt (sizes, mode, machine load). perf.data files stay in the work dir.
#
# Environment: PROFILE_P (packages, default 60000), PROFILE_K (trees, default 6: the
# profiled publish is the last), PROFILE_CHURN (0.01), PROFILE_SCALE (size scale, 0.01),
# PROFILE_SECS (10), PROFILE_DIR (work dir, default /tmp/asof-profile, emptied first),
# ASOF_BENCH (the generator, default target/release/asof-bench of this tree, built if absent).
set -euo pipefail

if [[ $# -ne 2 || $1 == -h || $1 == --help ]]; then
  sed -n '2,17p' "$0"
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/lib
ASOF=$(realpath "$1")
OUT=$2
W=${PROFILE_DIR:-/tmp/asof-profile}
BENCH=${ASOF_BENCH:-$ROOT/target/release/asof-bench}
: "${PROFILE_P:=60000}" "${PROFILE_K:=6}" "${PROFILE_CHURN:=0.01}" "${PROFILE_SCALE:=0.01}" "${PROFILE_SECS:=10}"
# shellcheck source=benches/lib/common.sh
. "$LIB/common.sh"

[[ -x $ASOF ]] || {
  echo "$ASOF is not an executable" >&2
  exit 2
}
for cmd in perf wrk jq curl; do
  command -v "$cmd" >/dev/null || {
    echo "$cmd is needed (apt-get install linux-perf wrk jq curl)" >&2
    exit 2
  }
done
if [[ ! -x $BENCH ]]; then (cd "$ROOT" && cargo build --release --bin asof-bench --quiet); fi
if [[ -e $W && ! -e $W/.asof-profile ]] && [[ -n $(ls -A "$W" 2>/dev/null) ]]; then
  echo "$W exists and was not made by this script; set PROFILE_DIR to another directory" >&2
  exit 2
fi
rm -rf "$W"
mkdir -p "$W/results" "$W/tmp" "$OUT"
touch "$W/.asof-profile"

ASOF_PID='' WRK_PID=''
cleanup() {
  local pid
  for pid in $WRK_PID $ASOF_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# report NAME: the text outputs of W/NAME.perf into OUT: every symbol, the top 30, and the
# top 30 of user space only (under heavy load the kernel's scheduler can fill the first list).
report() {
  perf report -i "$W/$1.perf" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | sed -E 's/[ -]+$//' >"$OUT/$1-report.txt"
  head -30 "$OUT/$1-report.txt" >"$OUT/$1-top30.txt"
  # awk, not grep | head: head closing the pipe early is a SIGPIPE failure under pipefail.
  awk 'index($0, "[.]") && n++ < 30' "$OUT/$1-report.txt" >"$OUT/$1-top30-user.txt"
  groups "$OUT/$1-report.txt" >"$OUT/$1-groups.txt"
  log "$1: top 10 symbols by self time"
  head -10 "$OUT/$1-top30.txt" >&2
}

# groups REPORT: self time summed by where it is spent (kernel, SQLite, allocator, ...), a
# coarser view that survives inlining differences between builds.
groups() {
  awk '{ p = $1; sub("%", "", p); s = $3; for (i = 4; i <= NF; i++) s = s " " $i; g = "other user space"
    if ($2 == "[k]") g = "kernel"
    else if (s ~ /^(sqlite3|pcache1|btree|balance|vdbe)/) g = "SQLite"
    else if (s ~ /malloc|_int_free|cfree|unlink_chunk|^free$|realloc/) g = "malloc/free"
    else if (s ~ /sha2::/) g = "SHA-256"
    else if (s ~ /mem(move|cpy|set|cmp)/) g = "memmove/memset/memcmp"
    else if (s ~ /tokio|parking_lot|futures|crossbeam/) g = "tokio and synchronisation"
    else if (s ~ /hyper|axum|h2::|http/) g = "hyper/axum"
    t[g] += p } END { for (g in t) printf "%6.2f%%  %s\n", t[g], g }' "$1" | sort -rn
}

log "generating $PROFILE_P packages × $PROFILE_K trees (churn $PROFILE_CHURN, size scale $PROFILE_SCALE)"
GEN=$W/gen
"$BENCH" gen --out "$GEN" --packages "$PROFILE_P" --publishes "$PROFILE_K" --churn "$PROFILE_CHURN" \
  --size-scale "$PROFILE_SCALE" 2>"$W/tmp/gen.log"
tail -1 "$W/tmp/gen.log" >&2
D=$W/data
TREES=("$GEN"/[0-9][0-9][0-9][0-9])
LAST=${TREES[-1]}
K=$(basename "$LAST")
log "publishing the first $((${#TREES[@]} - 1)) trees"
for tree in "${TREES[@]:0:${#TREES[@]}-1}"; do
  "$ASOF" --data "$D" publish bench "$tree" >/dev/null
done

ARGS=() MODE=walk
if [[ $("$ASOF" publish --help) == *--changes* ]]; then ARGS=(--changes "$GEN/$K.changes") MODE=changes; fi
log "profiling publish $K ($MODE)"
note_load publish
t0=$(date +%s.%N)
perf record -q -g -o "$W/publish.perf" -- "$ASOF" --data "$D" publish bench "$LAST" "${ARGS[@]}" --json >"$W/tmp/publish.json" 2>"$W/tmp/perf-publish.err" || {
  cat "$W/tmp/perf-publish.err" >&2
  exit 1
}
t1=$(date +%s.%N)
report publish

"$ASOF" --data "$D" serve --listen 127.0.0.1:0 >"$W/tmp/serve.out" 2>"$W/tmp/serve.err" &
ASOF_PID=$!
URL=''
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^asof listening on \(http:\/\/[^ ]*\).*/\1/p' "$W/tmp/serve.out")
  [[ -n $URL ]] && break
  sleep 0.1
done
[[ -n $URL ]] || {
  cat "$W/tmp/serve.err" >&2
  exit 1
}
"$ASOF" --data "$D" snapshots bench --json >"$W/snapshots.json"
LATEST=$(jq -r '.[-1].id' "$W/snapshots.json")
wait_http "$URL/bench/$LATEST/dists/bookworm/Release"
printf "/bench/$LATEST/%s\n" dists/bookworm/Release dists/bookworm/InRelease dists/bookworm/contrib/binary-all/Packages.xz >"$W/tmp/small.txt"
# IDs a few seconds after the latest must be in the past to resolve (not "future").
LATEST_UNIX=$(date -u -d "$(echo "$LATEST" | sed -E 's/(....)(..)(..)T(..)(..)(..)Z/\1-\2-\3 \4:\5:\6/')" +%s)
while (($(date +%s) < LATEST_UNIX + 7)); do sleep 1; done
"$BENCH" requests --gen "$GEN" --snapshots "$W/snapshots.json" --archive bench --count 20000 \
  --asof-out "$W/tmp/mix.txt" --plain-out "$W/tmp/mix-plain.txt" >"$W/mix-ids.json"
find "$D/blobs" -type f -print0 | xargs -0 cat >/dev/null

for load in mix small; do
  log "profiling serve under the $load load (${PROFILE_SECS}s)"
  note_load "serve-$load"
  run_wrk "warmup-$load" "$URL" "$W/tmp/$load.txt" 2 >/dev/null
  run_wrk "$load" "$URL" "$W/tmp/$load.txt" "$((PROFILE_SECS + 2))" >"$W/results/wrk-$load.json" &
  WRK_PID=$!
  sleep 1
  perf record -q -g -p "$ASOF_PID" -o "$W/serve-$load.perf" -- sleep "$PROFILE_SECS" 2>"$W/tmp/perf-serve.err"
  wait "$WRK_PID"
  WRK_PID=''
  jq -r '"  \(.requests / (.duration_us / 1e6) | floor) req/s, p99 \(.p99_us / 1000) ms"' "$W/results/wrk-$load.json" >&2
  report "serve-$load"
done
cleanup
ASOF_PID=''

{
  echo "asof: $ASOF ($("$ASOF" --version))"
  echo "data: $PROFILE_P packages × $PROFILE_K trees, churn $PROFILE_CHURN, size scale $PROFILE_SCALE (asof-bench gen, seed 1)"
  echo "publish: tree $K, mode $MODE, wall $(elapsed "$t0" "$t1") s under perf; report: $(jq -c '{files, added, changed, removed, duration_ms}' "$W/tmp/publish.json")"
  for load in mix small; do
    echo "serve-$load: wrk -t2 -c64, $(jq -r '"\(.requests / (.duration_us / 1e6) | floor) req/s, p50 \(.p50_us / 1000) ms, p99 \(.p99_us / 1000) ms"' "$W/results/wrk-$load.json") (perf attached for ${PROFILE_SECS}s)"
  done
  echo "mix IDs: $(cat "$W/mix-ids.json")"
  echo "perf: perf record -g (frame pointers); perf report --no-children --sort symbol -g none"
  echo "machine: $(nproc) cores; load average before each phase: $(awk -F'\t' '{printf "%s %s; ", $1, $2}' "$W/results/load.tsv")"
} >"$OUT/info.txt"
cat "$OUT/info.txt" >&2
log "profiles in $OUT; perf.data files in $W"
