#!/usr/bin/env bash
# benches/distributed.sh: the embedded default and the distributed set-up side by side on the
# same generated history: publish times (first publish, then 1% churn publishes) and serving
# (index files, and the apt-like mix of pool files over every snapshot) with wrk. The
# distributed set-up is PostgreSQL and s3s-fs from scripts/services.sh on this machine, so
# it measures asof's own cost of the network round trips, not a real network's latency.
#
#   BENCH_P (6000 packages), BENCH_K (6 publishes), BENCH_SCALE (0.1: median .deb ≈ 10 KB),
#   BENCH_SECS (10 s per load test), BENCH_REQS (20000 mix requests)
#
# Work dir: $ASOF_BENCH_DIR (default /tmp/asof-dist-bench), emptied first. Prints a markdown
# table; raw figures in $W/results.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/lib
W=${ASOF_BENCH_DIR:-/tmp/asof-dist-bench}
: "${BENCH_P:=6000}" "${BENCH_K:=6}" "${BENCH_SCALE:=0.1}" "${BENCH_SECS:=10}" "${BENCH_REQS:=20000}"
# shellcheck source=benches/lib/common.sh
. "$LIB/common.sh"
install_deps

rm -rf "$W" && mkdir -p "$W"/{results,tmp}
R=$W/results
(cd "$ROOT" && cargo build --release --locked --bins -q)
ASOF=$ROOT/target/release/asof BENCH=$ROOT/target/release/asof-bench

"$ROOT/scripts/services.sh" start postgres s3 >&2
# shellcheck disable=SC1091
. "${ASOF_SERVICES_DIR:-/var/tmp/asof-services}/env"
DB=asof_bench_$$
psql "$ASOF_TEST_POSTGRES" -qc "CREATE DATABASE $DB" >/dev/null
export AWS_ENDPOINT=$ASOF_TEST_S3_ENDPOINT AWS_ACCESS_KEY_ID=$ASOF_TEST_S3_ACCESS_KEY_ID \
  AWS_SECRET_ACCESS_KEY=$ASOF_TEST_S3_SECRET_ACCESS_KEY AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
DIST=(--catalog "${ASOF_TEST_POSTGRES%/*}/$DB" --blobs "s3://asof-test/$DB")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n ${BENCH_KEEP:-} ]] && return # BENCH_KEEP=1: keep the database and the bucket prefix
  psql "$ASOF_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "${ASOF_SERVICES_DIR:-/var/tmp/asof-services}/s3/asof-test/$DB"
}
trap cleanup EXIT

log "generating $BENCH_P packages, $BENCH_K publishes"
"$BENCH" gen --out "$W/gen" --packages "$BENCH_P" --publishes "$BENCH_K" --size-scale "$BENCH_SCALE" 2>/dev/null
TREES=("$W/gen"/[0-9][0-9][0-9][0-9])

publish_all() { # NAME DATA [FLAGS...]: one line per publish, "NAME i seconds"
  local name=$1 data=$2 i=0 start end
  shift 2
  for tree in "${TREES[@]}"; do
    start=$(date +%s.%N)
    "$ASOF" --data "$data" "$@" publish bench "$tree" >/dev/null 2>"$W/tmp/publish.err" || {
      cat "$W/tmp/publish.err" >&2
      exit 1
    }
    end=$(date +%s.%N)
    printf '%s\t%d\t%s\n' "$name" "$i" "$(elapsed "$start" "$end")" >>"$R/publish.tsv"
    i=$((i + 1))
  done
}
log "publishing into the embedded default and into PostgreSQL + S3"
publish_all embedded "$W/embedded"
publish_all distributed "$W/distributed" "${DIST[@]}"

serve() { # NAME DATA [FLAGS...]: starts asof serve; sets URL
  local out=$W/tmp/serve-$1.out
  shift
  local data=$1
  shift
  "$ASOF" --data "$data" "$@" serve --listen 127.0.0.1:0 >"$out" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    if grep -q '^asof listening on' "$out"; then
      URL=$(sed -n 's/^asof listening on \(http:\/\/[^ ]*\).*/\1/p' "$out")
      return
    fi
    sleep 0.1
  done
  echo "asof serve did not start" >&2
  exit 1
}
"$ASOF" --data "$W/embedded" snapshots bench --json >"$W/tmp/snapshots.json"
LATEST=$(jq -r '.[-1].id' "$W/tmp/snapshots.json")
sleep 8 # IDs a few seconds past the latest must be in the past for the mix
"$BENCH" requests --gen "$W/gen" --snapshots "$W/tmp/snapshots.json" --archive bench --count "$BENCH_REQS" \
  --asof-out "$W/tmp/mix.txt" --plain-out "$W/tmp/mix-plain.txt" >/dev/null
# Index files of the latest snapshot: what every apt update asks for.
(cd "${TREES[-1]}" && find dists -type f | sed "s|^|/bench/$LATEST/|") >"$W/tmp/small.txt"
# The distributed catalog has other IDs (publishes at other seconds): its own lists.
"$ASOF" --data "$W/distributed" "${DIST[@]}" snapshots bench --json >"$W/tmp/snapshots-dist.json"
LATEST_D=$(jq -r '.[-1].id' "$W/tmp/snapshots-dist.json")
"$BENCH" requests --gen "$W/gen" --snapshots "$W/tmp/snapshots-dist.json" --archive bench --count "$BENCH_REQS" \
  --asof-out "$W/tmp/mix-dist.txt" --plain-out "$W/tmp/mix-plain.txt" >/dev/null
sed "s|/$LATEST/|/$LATEST_D/|" "$W/tmp/small.txt" >"$W/tmp/small-dist.txt"

printf 'test\tsetup\treq_per_s\tMB_per_s\tp50_ms\tp99_ms\terrors\n' >"$R/serving.tsv"
measure() { # TEST SETUP URL PATHS
  run_wrk "$1-$2-warmup" "$3" "$4" 2 >/dev/null
  run_wrk "$1-$2" "$3" "$4" "$BENCH_SECS" | jq -r --arg t "$1" --arg s "$2" '[$t, $s,
      (.requests/(.duration_us/1e6)|floor), (.bytes/(.duration_us/1e6)/1e6*10|floor/10), (.p50_us/1e3), (.p99_us/1e3),
      (.errors_connect+.errors_read+.errors_write+.errors_status+.errors_timeout)] | @tsv' >>"$R/serving.tsv"
}
log "serving: embedded"
serve embedded "$W/embedded"
measure small embedded "$URL" "$W/tmp/small.txt"
measure mix embedded "$URL" "$W/tmp/mix.txt"
kill "${PIDS[-1]}"
log "serving: PostgreSQL + S3"
serve distributed "$W/distributed" "${DIST[@]}"
measure small distributed "$URL" "$W/tmp/small-dist.txt"
measure mix distributed "$URL" "$W/tmp/mix-dist.txt"

echo
echo "| publish | embedded (s) | PostgreSQL + S3 (s) |"
echo "|---|---:|---:|"
first() { awk -F'\t' -v s="$1" '$1 == s && $2 == 0 {print $3}' "$R/publish.tsv"; }
churn() { awk -F'\t' -v s="$1" '$1 == s && $2 > 0 {print $3}' "$R/publish.tsv" | median; }
echo "| first ($BENCH_P packages) | $(first embedded) | $(first distributed) |"
echo "| 1% churn, median of $((BENCH_K - 1)) | $(churn embedded) | $(churn distributed) |"
echo
echo "| serving (wrk -t2 -c64, ${BENCH_SECS} s) | setup | req/s | MB/s | p50 ms | p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|---:|"
tail -n +2 "$R/serving.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s | %.2f | %.2f | %s |\n", $1, $2, $3, $4, $5, $6, $7}'
