#!/usr/bin/env bash
# benches/serve-ab.sh ASOF_BINARY [SECONDS]: the serving rows of run.sh again, on the data a
# finished run left in $ASOF_BENCH_DIR (default /tmp/asof-bench), for one asof binary: a
# quick A/B of serving changes without regenerating or republishing anything.
#
#   TESTS="small mix large huge"   which path lists to load (default: small mix)
#   WITH_NGINX=1                    measure nginx on the same lists first (run.sh's config)
#
# Each test: a warm-up of SECONDS (default 5), then wrk -t2 -c64 for SECONDS; prints req/s,
# MB/s, p50, p99 and the server's VmHWM. Only 127.0.0.1 is contacted.
set -euo pipefail
ASOF=${1:?usage: benches/serve-ab.sh ASOF_BINARY [SECONDS]}
SECS=${2:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=${ASOF_BENCH_DIR:-/tmp/asof-bench}
[[ -e $W/.asof-bench && -d $W/data/main ]] || {
  echo "$W holds no finished benches/run.sh (run it first, e.g. with --quick)" >&2
  exit 2
}
NGINX_PORT=$(sed -n 's/^ *listen 127.0.0.1:\([0-9]*\);/\1/p' "$W/nginx/nginx.conf")
NGINX_PID='' ASOF_PID=''
cleanup() {
  local pid
  for pid in $ASOF_PID $NGINX_PID; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

load() { # load URL PATHS LABEL
  wrk -t2 -c64 -d"${SECS}s" --latency --timeout 60s -s "$ROOT/benches/lib/wrk-paths.lua" "$1" -- "$2" |
    sed -n 's/^WRKJSON //p' |
    jq -r --arg t "$3" '"\($t)\t\(.requests / (.duration_us / 1e6) | floor) req/s\t\(.bytes / (.duration_us / 1e6) / 1e6 | floor) MB/s\tp50 \(.p50_us / 1000) ms\tp99 \(.p99_us / 1000) ms\terrors \(.errors_status + .errors_read)"'
}

if [[ -n ${WITH_NGINX:-} ]]; then
  nginx -e "$W/nginx/error.log" -c "$W/nginx/nginx.conf" &
  NGINX_PID=$!
  sleep 1
fi
"$ASOF" --data "$W/data/main" serve --listen 127.0.0.1:0 >"$W/tmp/ab-serve.out" 2>"$W/tmp/ab-serve.err" &
ASOF_PID=$!
URL=''
for _ in $(seq 1 100); do
  URL=$(sed -n 's/^asof listening on \(http:\/\/[^ ]*\).*/\1/p' "$W/tmp/ab-serve.out" 2>/dev/null || true)
  [[ -n $URL ]] && break
  sleep 0.1
done
[[ -n $URL ]] || {
  cat "$W/tmp/ab-serve.err" >&2
  exit 1
}
for t in ${TESTS:-small mix}; do
  [[ -n $NGINX_PID ]] && load "http://127.0.0.1:$NGINX_PORT" "$W/tmp/$t-nginx.txt" "$t nginx"
  load "$URL" "$W/tmp/$t-asof.txt" "$t warm-up" >/dev/null
  load "$URL" "$W/tmp/$t-asof.txt" "$t asof"
done
grep VmHWM "/proc/$ASOF_PID/status"
