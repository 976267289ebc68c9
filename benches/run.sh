#!/usr/bin/env bash
# benches/run.sh [--quick]: every row of issue 13's target table, side by side in one run:
# asof vs nginx (small files, apt-like mix, large files), asof vs aptly publishing the same
# 60k-package history, publish cost at 10x the archive size, peak RSS, and the lookup
# microbenchmark's resolve p99. Each row: figures, ratio, target, met. See benches/README.md.
#
#   --quick   smoke run of every row at small sizes (about 10 minutes on 2 busy cores)
#   default   full run: 60,000-package suite, 600,000-package suite, 20 s load tests,
#             cargo bench --bench lookup at 1,000 snapshots x 1M paths (40+ minutes)
#
# Work dir: $ASOF_BENCH_DIR (default /tmp/asof-bench), emptied first. Results:
# $W/results/*.tsv (machine-readable), targets.tsv/.json, summary.md (printed at the end).
# Only 127.0.0.1 is ever contacted; servers listen on free ports and are stopped on exit.
set -euo pipefail

MODE=full
for arg in "$@"; do
  case $arg in
    --quick) MODE=quick ;;
    -h | --help)
      sed -n '2,13p' "$0"
      exit 0
      ;;
    *)
      echo "unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$ROOT/benches/lib
W=${ASOF_BENCH_DIR:-/tmp/asof-bench}
ASOF=$ROOT/target/release/asof
BENCH=$ROOT/target/release/asof-bench
# shellcheck source=benches/lib/common.sh
. "$LIB/common.sh"

# Sizes. Every one can be overridden from the environment (BENCH_P=..., etc.).
# BENCH_APTLY_K: how many trees of the main history aptly replays (about 11 s per publish
# at 60k packages); both tools are compared on the medians over the same publishes.
# BENCH_LOOKUP: full (cargo bench, 1,000 snapshots x 1M paths), tiny (cargo test of the same
# bench at 10 x 2,000: a smoke test) or skip.
if [[ $MODE == quick ]]; then
  : "${BENCH_P:=3000}" "${BENCH_K:=21}" "${BENCH_P2:=30000}" "${BENCH_K2:=3}" "${BENCH_SECS:=5}"
  : "${BENCH_BIG_COUNT:=4}" "${BENCH_BIG_SIZE:=32M}" "${BENCH_REQS:=5000}" "${BENCH_LOOKUP:=tiny}"
else
  : "${BENCH_P:=60000}" "${BENCH_K:=21}" "${BENCH_P2:=600000}" "${BENCH_K2:=4}" "${BENCH_SECS:=20}"
  : "${BENCH_BIG_COUNT:=4}" "${BENCH_BIG_SIZE:=256M}" "${BENCH_REQS:=50000}" "${BENCH_LOOKUP:=full}"
fi
: "${BENCH_APTLY_K:=6}" "${BENCH_CHURN:=0.01}" "${BENCH_SCALE:=0.01}" "${BENCH_SEED:=1}"
# The large archive gets the same number of touched packages per publish (1% of 60k ≈ 1,000
# changed paths), i.e. a proportionally smaller churn fraction.
BENCH_CHURN2=$(awk -v c="$BENCH_CHURN" -v p="$BENCH_P" -v q="$BENCH_P2" 'BEGIN{printf "%.6f", c*p/q}')
((BENCH_APTLY_K >= 2 && BENCH_APTLY_K <= BENCH_K)) || {
  echo "BENCH_APTLY_K must be between 2 and BENCH_K ($BENCH_K)" >&2
  exit 2
}

NGINX_PID='' ASOF_PID=''
cleanup() {
  local pid
  for pid in $ASOF_PID $NGINX_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
install_deps
log "building release binaries"
(cd "$ROOT" && cargo build --release --bins --quiet)
ASOF_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

if [[ -e $W && ! -e $W/.asof-bench ]] && [[ -n $(ls -A "$W" 2>/dev/null) ]]; then
  echo "$W exists and was not made by this script; set ASOF_BENCH_DIR to another directory" >&2
  exit 2
fi
rm -rf "$W"
mkdir -p "$W/results" "$W/tmp" "$W/gen" "$W/data" "$W/bin"
touch "$W/.asof-bench"
# Run copies, so that a rebuild in the source tree during the run changes nothing here.
# ASOF_BIN=PATH measures another asof binary (e.g. a build of an older commit) with this
# tree's asof-bench.
cp "${ASOF_BIN:-$ASOF}" "$W/bin/asof"
cp "$BENCH" "$W/bin/"
ASOF=$W/bin/asof BENCH=$W/bin/asof-bench
[[ -n ${ASOF_BIN:-} ]] && ASOF_COMMIT="$ASOF_BIN"
# Publishes after the first name their changes (`--changes FILE`, written by the generator)
# when this asof has the flag, else asof walks the tree. BENCH_PUBLISH_MODE=walk forces the walk.
if [[ ${BENCH_PUBLISH_MODE:-} != walk && $("$ASOF" publish --help) == *--changes* ]]; then
  PUBLISH_MODE=changes
else
  PUBLISH_MODE=walk
fi
R=$W/results
SUMMARY=$R/summary.md
STARTED=$(date +%s)

{
  echo "# asof benchmarks ($MODE mode, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  machine_info
  echo
  echo "Parameters: P=$BENCH_P packages × $BENCH_K publishes at churn $BENCH_CHURN; large archive P2=$BENCH_P2 × $BENCH_K2 at churn $BENCH_CHURN2; size scale $BENCH_SCALE; load tests ${BENCH_SECS}s at wrk -t2 -c64; aptly replays the first $BENCH_APTLY_K trees of the P history; asof publishes with $PUBLISH_MODE; lookup bench $BENCH_LOOKUP; hashing $BENCH_BIG_COUNT × $BENCH_BIG_SIZE."
} >"$SUMMARY"
cat "$SUMMARY"
# What report.sh needs to label and compare the rows.
printf '%s\t%s\n' mode "$MODE" packages "$BENCH_P" publishes "$BENCH_K" packages_large "$BENCH_P2" \
  publishes_large "$BENCH_K2" churn "$BENCH_CHURN" churn_large "$BENCH_CHURN2" aptly_publishes "$BENCH_APTLY_K" \
  publish_mode "$PUBLISH_MODE" lookup "$BENCH_LOOKUP" load_seconds "$BENCH_SECS" >"$R/params.tsv"

# ---------------------------------------------------------------------------------------
# publish_history DATA ARCHIVE GENDIR LABEL: publishes every tree of GENDIR in order,
# appending one row per publish to $R/publish.tsv (wall_s: the whole `asof publish` process).
PUBLISH_TSV=$R/publish.tsv
printf 'label\ttree\tmode\tfiles\tadded\tchanged\tremoved\tnew_blobs\tnew_bytes\tduration_ms\twall_s\tpeak_rss_kb\tdb_bytes\tdb_growth\tblob_bytes\tblob_growth\n' >"$PUBLISH_TSV"
publish_history() {
  local data=$1 archive=$2 gen=$3 label=$4 tree k db blobs prev_db=0 prev_blobs=0 t0 t1 rss mode args
  for tree in "$gen"/[0-9][0-9][0-9][0-9]; do
    k=$(basename "$tree")
    args=() mode=walk
    if [[ $PUBLISH_MODE == changes && $k != 0000 ]]; then args=(--changes "$gen/$k.changes") mode=changes; fi
    t0=$(date +%s.%N)
    /usr/bin/time -f '%e %M' -o "$W/tmp/time" \
      "$ASOF" --data "$data" publish "$archive" "$tree" "${args[@]}" --json >"$W/tmp/report.json" 2>"$W/tmp/publish.err" || {
      cat "$W/tmp/publish.err" >&2
      return 1
    }
    t1=$(date +%s.%N)
    read -r _ rss <"$W/tmp/time"
    db=$(db_bytes "$data")
    blobs=$(dir_bytes "$data/blobs")
    jq -r --arg l "$label" --arg t "$k" --arg m "$mode" --arg w "$(elapsed "$t0" "$t1")" --arg r "$rss" \
      --argjson db "$db" --argjson dbg $((db - prev_db)) --argjson b "$blobs" --argjson bg $((blobs - prev_blobs)) \
      '[$l, $t, $m, .files, .added, .changed, .removed, .new_blobs, .new_bytes, .duration_ms, $w, $r, $db, $dbg, $b, $bg] | @tsv' \
      "$W/tmp/report.json" >>"$PUBLISH_TSV"
    tail -1 "$PUBLISH_TSV" | awk -F'\t' '{printf "  %s %s (%s): %d files, +%d ~%d -%d, %.3fs, %.0f MB peak RSS, db +%d B, blobs +%.1f MB\n", $1, $2, $3, $4, $5, $6, $7, $11, $12/1024, $14, $16/1e6}' >&2
    prev_db=$db prev_blobs=$blobs
  done
}

# ---------------------------------------------------------------------------------------
log "generating the history: $BENCH_P packages, $BENCH_K publishes, churn $BENCH_CHURN, size scale $BENCH_SCALE"
GEN=$W/gen/main
/usr/bin/time -f '%e' -o "$W/tmp/gen-time" "$BENCH" gen --out "$GEN" --seed "$BENCH_SEED" --packages "$BENCH_P" \
  --publishes "$BENCH_K" --churn "$BENCH_CHURN" --size-scale "$BENCH_SCALE" 2>"$R/gen-main.log"
tail -1 "$R/gen-main.log" >&2
MAIN_TREES=("$GEN"/[0-9][0-9][0-9][0-9])
LAST_TREE=${MAIN_TREES[-1]}

log "b. publishing the history into asof"
note_load publish-main
D=$W/data/main
publish_history "$D" bench "$GEN" main
"$ASOF" --data "$D" snapshots bench --json >"$R/snapshots.json"

# ---------------------------------------------------------------------------------------
log "d. hashing: asof publish vs sha256sum on $BENCH_BIG_COUNT × $BENCH_BIG_SIZE"
note_load hashing
FILES=$W/files
"$BENCH" files --out "$FILES" --seed "$BENCH_SEED" --count "$BENCH_BIG_COUNT" --size "$BENCH_BIG_SIZE" >/dev/null
BIG_BYTES=$(dir_bytes "$FILES")
hyperfine --style basic --warmup 1 --runs 3 --export-json "$R/hash-fresh.json" \
  --prepare "rm -rf $W/data/hash" \
  -n 'asof publish (fresh data dir)' "$ASOF --data $W/data/hash publish files $FILES" \
  -n 'sha256sum' "sha256sum $FILES/*" \
  -n "sha256sum, $(nproc) in parallel" "ls $FILES/* | xargs -P $(nproc) -n 1 sha256sum" >&2
"$ASOF" --data "$W/data/hash2" publish files "$FILES" >/dev/null
hyperfine --style basic --warmup 1 --runs 3 --export-json "$R/hash-again.json" \
  -n 'asof publish --rehash (blobs present: hash only)' "$ASOF --data $W/data/hash2 publish --rehash files $FILES" \
  -n 'asof publish (blobs present, stat cache)' "$ASOF --data $W/data/hash2 publish files $FILES" >&2
jq -r --argjson bytes "$BIG_BYTES" '.results[] | [.command, .mean, .stddev, ($bytes / .mean / 1e6)] | @tsv' \
  "$R/hash-fresh.json" "$R/hash-again.json" >"$R/hash.tsv"
rm -rf "$W/data/hash" "$W/data/hash2"
# The same files, served as archive "big" by asof and under /big/ by nginx.
"$ASOF" --data "$D" publish big "$FILES" >/dev/null

# ---------------------------------------------------------------------------------------
log "a. serving: nginx vs asof serve"
NGINX_PORT=$("$BENCH" free-port)
mkdir -p "$W/nginx/tmp"
# open_file_cache keeps descriptors open: its size must stay well under the per-worker fd
# limit, or workers fail with EMFILE on a big tree. The hard limit may not be raisable here.
NOFILE=$(ulimit -Hn)
[[ $NOFILE == unlimited ]] && NOFILE=1048576
FILE_CACHE=$((NOFILE / 2 < 200000 ? NOFILE / 2 : 200000))
cat >"$W/nginx/nginx.conf" <<EOF
user root;
worker_processes auto;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  open_file_cache max=$FILE_CACHE inactive=120s;
  open_file_cache_valid 120s;
  open_file_cache_min_uses 1;
  open_file_cache_errors on;
  access_log off;
  client_body_temp_path $W/nginx/tmp/body;
  proxy_temp_path $W/nginx/tmp/proxy;
  fastcgi_temp_path $W/nginx/tmp/fastcgi;
  uwsgi_temp_path $W/nginx/tmp/uwsgi;
  scgi_temp_path $W/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $LAST_TREE;
    location /big/ { alias $FILES/; }
  }
}
EOF
nginx -e "$W/nginx/error.log" -t -c "$W/nginx/nginx.conf" 2>"$W/tmp/nginx-t.log" || {
  cat "$W/tmp/nginx-t.log" >&2
  exit 1
}
nginx -e "$W/nginx/error.log" -c "$W/nginx/nginx.conf" &
NGINX_PID=$!
NGINX=http://127.0.0.1:$NGINX_PORT
wait_http "$NGINX/dists/bookworm/Release"

"$ASOF" --data "$D" serve --listen 127.0.0.1:0 >"$W/tmp/asof-serve.out" 2>"$W/tmp/asof-serve.err" &
ASOF_PID=$!
ASOF_URL=''
for _ in $(seq 1 300); do
  ASOF_URL=$(sed -n 's/^asof listening on \(http:\/\/[^ ]*\).*/\1/p' "$W/tmp/asof-serve.out")
  [[ -n $ASOF_URL ]] && break
  kill -0 "$ASOF_PID" || {
    cat "$W/tmp/asof-serve.err" >&2
    exit 1
  }
  sleep 0.1
done
[[ -n $ASOF_URL ]] || {
  echo "asof serve did not start" >&2
  exit 1
}
LATEST=$(jq -r '.[-1].id' "$R/snapshots.json")
BIG_ID=$("$ASOF" --data "$D" snapshots big --json | jq -r '.[-1].id')
wait_http "$ASOF_URL/bench/$LATEST/dists/bookworm/Release"

# Both servers must hand out the same bytes.
for p in dists/bookworm/InRelease dists/bookworm/main/binary-amd64/Packages.xz; do
  cmp <(curl -sf "$NGINX/$p") <(curl -sf "$ASOF_URL/bench/$LATEST/$p") || {
    echo "nginx and asof differ on $p" >&2
    exit 1
  }
done

# Request lists. (1) small index files:
SMALL=(dists/bookworm/Release dists/bookworm/InRelease dists/bookworm/contrib/binary-all/Packages.xz)
printf '/%s\n' "${SMALL[@]}" >"$W/tmp/small-nginx.txt"
printf "/bench/$LATEST/%s\n" "${SMALL[@]}" >"$W/tmp/small-asof.txt"
SMALL_SIZES=$(for p in "${SMALL[@]}"; do stat -c %s "$LAST_TREE/$p"; done | paste -sd/)
echo "small_bytes	$SMALL_SIZES" >"$R/serving-sets.tsv"
# (2) the largest pool files, and the large random files:
mapfile -t LARGE < <(cd "$LAST_TREE" && find pool -type f -printf '%s %p\n' | sort -n | tail -4 | cut -d' ' -f2)
printf '/%s\n' "${LARGE[@]}" >"$W/tmp/large-nginx.txt"
printf "/bench/$LATEST/%s\n" "${LARGE[@]}" >"$W/tmp/large-asof.txt"
LARGE_SIZES=$(for p in "${LARGE[@]}"; do stat -c %s "$LAST_TREE/$p"; done | sort -n | paste -sd/)
echo "large_bytes	$LARGE_SIZES" >>"$R/serving-sets.tsv"
echo "huge_bytes	$(find "$FILES" -type f -printf '%s\n' | paste -sd/)" >>"$R/serving-sets.tsv"
find "$FILES" -type f -printf '/big/%P\n' | sort >"$W/tmp/huge-nginx.txt"
find "$FILES" -type f -printf "/big/$BIG_ID/%P\n" | sort >"$W/tmp/huge-asof.txt"
# (3) the apt-like mix: wait until IDs a few seconds after the latest are in the past, so
# that they resolve (to the latest, with a short cache lifetime) instead of being "future".
LATEST_UNIX=$(date -u -d "$(echo "$LATEST" | sed -E 's/(....)(..)(..)T(..)(..)(..)Z/\1-\2-\3 \4:\5:\6/')" +%s)
while (($(date +%s) < LATEST_UNIX + 7)); do sleep 1; done
"$BENCH" requests --gen "$GEN" --snapshots "$R/snapshots.json" --archive bench --count "$BENCH_REQS" \
  --seed "$BENCH_SEED" --asof-out "$W/tmp/mix-asof.txt" --plain-out "$W/tmp/mix-nginx.txt" >"$R/mix-ids.json"

# Both servers start with their files in the page cache (the tree for nginx, the blob store
# for asof).
find "$LAST_TREE" "$D/blobs" "$FILES" -type f -print0 | xargs -0 cat >/dev/null
note_load serving
SERVE_TSV=$R/serving.tsv
printf 'test\tserver\trequests\tbytes\tseconds\treq_per_s\tMB_per_s\tp50_ms\tp99_ms\tmax_ms\terrors\n' >"$SERVE_TSV"
load() { # load TEST SERVER BASE PATHS
  local json
  run_wrk "$1-$2-warmup" "$3" "$4" 2 >/dev/null
  json=$(run_wrk "$1-$2" "$3" "$4" "$BENCH_SECS")
  echo "$json" >"$R/wrk-$1-$2.json"
  jq -r --arg t "$1" --arg s "$2" '[$t, $s, .requests, .bytes, (.duration_us/1e6),
      (.requests/(.duration_us/1e6)), (.bytes/(.duration_us/1e6)/1e6), (.p50_us/1e3), (.p99_us/1e3), (.max_us/1e3),
      (.errors_connect+.errors_read+.errors_write+.errors_status+.errors_timeout)] | @tsv' <<<"$json" >>"$SERVE_TSV"
  tail -1 "$SERVE_TSV" | awk -F'\t' '{printf "  %-6s %-6s %10.0f req/s %9.1f MB/s  p50 %.2f ms  p99 %.2f ms  errors %d\n", $1, $2, $6, $7, $8, $9, $11}' >&2
}
for t in small large huge mix; do
  load "$t" nginx "$NGINX" "$W/tmp/$t-nginx.txt"
  load "$t" asof "$ASOF_URL" "$W/tmp/$t-asof.txt"
done
read -r ASOF_HWM ASOF_RSS < <(rss_of "$ASOF_PID")
NGINX_HWM=0
for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); do
  NGINX_HWM=$((NGINX_HWM + $(rss_of "$pid" | cut -d' ' -f1)))
done
printf 'asof_serve_vmhwm_kb\t%s\nasof_serve_vmrss_kb\t%s\nnginx_total_vmhwm_kb\t%s\n' "$ASOF_HWM" "$ASOF_RSS" "$NGINX_HWM" >"$R/rss.tsv"
cleanup
NGINX_PID='' ASOF_PID=''

# ---------------------------------------------------------------------------------------
log "c. aptly on the same history: its first $BENCH_APTLY_K trees"
note_load aptly
APTLY_CONF=$W/aptly.conf
cat >"$APTLY_CONF" <<EOF
{
  "rootDir": "$W/aptly",
  "downloadConcurrency": 4,
  "architectures": [],
  "dependencyFollowSuggests": false,
  "gpgDisableSign": true,
  "gpgDisableVerify": true,
  "skipContentsPublishing": true,
  "FileSystemPublishEndpoints": {}
}
EOF
APTLY=(aptly -config="$APTLY_CONF")
"${APTLY[@]}" repo create -distribution=bookworm -component=main bench >/dev/null
APTLY_TSV=$R/aptly.tsv
printf 'tool\ttree\tadded\tremoved\tseconds\tdisk_bytes\tdisk_growth\tdb_bytes\tdb_growth\n' >"$APTLY_TSV"
prev_disk=0 prev_db=0
for ((i = 0; i < BENCH_APTLY_K; i++)); do
  k=$(printf '%04d' "$i")
  tree=$GEN/$k
  mapfile -t adds < <(awk -F'\t' -v t="$tree" '$1=="add"{print t"/"$2}' "$GEN/changes/$k.tsv")
  mapfile -t rms < <(awk -F'\t' '$1=="remove"{printf "%s (= %s) {%s}\n", $2, $3, $4}' "$GEN/changes/$k.tsv")
  t0=$(date +%s.%N)
  if ((${#adds[@]})); then printf '%s\n' "${adds[@]}" | xargs "${APTLY[@]}" repo add bench >"$W/tmp/aptly.log" 2>&1; fi
  if ((${#rms[@]})); then "${APTLY[@]}" repo remove bench "${rms[@]}" >>"$W/tmp/aptly.log" 2>&1; fi
  "${APTLY[@]}" snapshot create "s$k" from repo bench >>"$W/tmp/aptly.log"
  if [[ $k == 0000 ]]; then
    "${APTLY[@]}" publish snapshot -skip-signing -distribution=bookworm "s$k" >>"$W/tmp/aptly.log"
  else
    "${APTLY[@]}" publish switch -skip-signing bookworm "s$k" >>"$W/tmp/aptly.log"
  fi
  t1=$(date +%s.%N)
  disk=$(dir_bytes "$W/aptly")
  db=$(dir_bytes "$W/aptly/db")
  printf 'aptly\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "${#adds[@]}" "${#rms[@]}" "$(elapsed "$t0" "$t1")" \
    "$disk" $((disk - prev_disk)) "$db" $((db - prev_db)) >>"$APTLY_TSV"
  tail -1 "$APTLY_TSV" | awk -F'\t' '{printf "  aptly %s: +%d -%d packages, %.2fs\n", $2, $3, $4, $5}' >&2
  prev_disk=$disk prev_db=$db
done
# aptly's last snapshot must list what the generator's tree lists.
want=$(cat "$GEN/$k/dists/bookworm"/{main,contrib}/binary-amd64/Packages | grep -c '^Package:')
got=$(grep -c '^Package:' "$W/aptly/public/dists/bookworm/main/binary-amd64/Packages")
echo "  aptly's snapshot $k lists $got amd64+all packages, the generated tree $want" >&2
if ((got != want)); then
  echo "aptly did not replay the history faithfully (see $W/tmp/aptly.log)" >&2
  exit 1
fi

# ---------------------------------------------------------------------------------------
log "b. the same number of changes on a ${BENCH_P2}-package archive (churn $BENCH_CHURN2)"
GEN2=$W/gen/large
"$BENCH" gen --out "$GEN2" --seed "$((BENCH_SEED + 2))" --packages "$BENCH_P2" --publishes "$BENCH_K2" \
  --churn "$BENCH_CHURN2" --size-scale "$BENCH_SCALE" 2>"$R/gen-large.log"
tail -1 "$R/gen-large.log" >&2
note_load publish-large
publish_history "$W/data/large" bench "$GEN2" large

# ---------------------------------------------------------------------------------------
log "e. resolve (ID, path) latency: the lookup bench ($BENCH_LOOKUP)"
note_load lookup
# The bench prints "resolve (ID, path) on N snapshots x M paths, Q random queries (PASS):
# p50 D, p99 D, max D" (Rust Duration formatting) for a cold and a warm pass. The release
# profile shares its compiled crates with the binaries built above.
case $BENCH_LOOKUP in
  full) (cd "$ROOT" && cargo bench --profile release --bench lookup -- resolve_id_and_path) >"$R/lookup.txt" 2>&1 ;;
  tiny) (cd "$ROOT" && cargo test --profile release --bench lookup) >"$R/lookup.txt" 2>&1 ;;
  skip) : >"$R/lookup.txt" ;;
  *)
    echo "BENCH_LOOKUP must be full, tiny or skip" >&2
    exit 2
    ;;
esac
{
  printf 'pass\tsnapshots\tpaths\tqueries\tp50_us\tp99_us\tmax_us\n'
  sed -nE 's/.*resolve \(ID, path\) on ([0-9]+) snapshots x ([0-9]+) paths, ([0-9]+) random queries \(([a-z]+)\): p50 ([0-9.]+[nµm]?s), p99 ([0-9.]+[nµm]?s), max ([0-9.]+[nµm]?s).*/\4 \1 \2 \3 \5 \6 \7/p' "$R/lookup.txt" |
    awk 'function us(d, v) { v = d + 0; return d ~ /ns$/ ? v / 1000 : d ~ /ms$/ ? v * 1000 : d ~ /µs$/ ? v : v * 1e6 }
      { printf "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\n", $1, $2, $3, $4, us($5), us($6), us($7) }'
} >"$R/lookup.tsv"
if [[ $BENCH_LOOKUP != skip && $(wc -l <"$R/lookup.tsv") -lt 2 ]]; then
  echo "the lookup bench printed no resolve latency line (see $R/lookup.txt)" >&2
  exit 1
fi
tail -n +2 "$R/lookup.tsv" | awk -F'\t' '{printf "  %s: p50 %.1f µs, p99 %.1f µs on %d snapshots x %d paths\n", $1, $5, $6, $2, $3}' >&2

# ---------------------------------------------------------------------------------------
"$LIB/report.sh" "$R" "$MODE" >>"$SUMMARY"
log "done in $(($(date +%s) - STARTED)) s; results in $R"
cat "$SUMMARY"
# Last, as deleting millions of hard links takes minutes on a busy disk.
if [[ -z ${ASOF_BENCH_KEEP:-} ]]; then
  log "freeing disk: removing aptly's root and the large archive (ASOF_BENCH_KEEP=1 keeps them)"
  rm -rf "$W/aptly" "$GEN2" "$W/data/large"
fi
