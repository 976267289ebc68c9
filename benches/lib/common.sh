# shellcheck shell=bash
# Helpers for benches/run.sh (sourced, not run). Needs: W (work dir), ASOF, BENCH, LIB.

log() { printf '\n[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Installs the Debian packages that provide missing commands.
install_deps() {
  local need=() pair cmd pkg
  for pair in nginx:nginx wrk:wrk aptly:aptly hyperfine:hyperfine jq:jq sqlite3:sqlite3 curl:curl \
    /usr/bin/time:time dpkg-deb:dpkg xz:xz-utils; do
    cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
  done
  if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# Bytes of the metadata database after folding the WAL into it.
db_bytes() {
  local db=$1/asof.db wal=0
  sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
  [[ -f $db-wal ]] && wal=$(stat -c %s "$db-wal")
  echo $(($(stat -c %s "$db") + wal))
}

dir_bytes() { if [[ -e $1 ]]; then du -sb "$1" | cut -f1; else echo 0; fi; }

# Waits until URL answers 200 (at most ~30 s).
wait_http() {
  local url=$1
  for _ in $(seq 1 300); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; then return 0; fi
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

# run_wrk NAME BASE_URL PATHS_FILE SECONDS -> prints the WRKJSON object.
run_wrk() {
  local name=$1 base=$2 paths=$3 secs=$4 out
  out=$W/results/wrk-$name.txt
  wrk -t2 -c64 -d"${secs}s" --latency --timeout 60s -s "$LIB/wrk-paths.lua" "$base" -- "$paths" >"$out" 2>&1
  grep '^WRKJSON ' "$out" | cut -d' ' -f2-
}

# Peak and current RSS (kB) of a process: "VmHWM VmRSS".
rss_of() { awk '/^VmHWM/{h=$2} /^VmRSS/{r=$2} END{print h, r}' "/proc/$1/status"; }

# Machine and tool versions, as Markdown.
machine_info() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  echo "| | |"
  echo "|---|---|"
  echo "| CPU | ${cpu:-unknown} ($(nproc) cores visible) |"
  echo "| memory | $(free -g | awk '/^Mem/{print $2}') GiB |"
  echo "| kernel | $(uname -r) |"
  echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME") |"
  echo "| disk (work dir) | $(df -h "$W" | awk 'NR==2{print $1", "$2" total, "$4" free"}') $(findmnt -no FSTYPE -T "$W" 2>/dev/null || true) |"
  echo "| asof | $("$ASOF" --version) (release build of ${ASOF_COMMIT:-?}) |"
  echo "| rustc | $(rustc --version 2>/dev/null || echo '?') |"
  echo "| nginx | $(nginx -v 2>&1 | sed 's/^nginx version: //') |"
  echo "| wrk | $(wrk -v 2>&1 | head -1 | awk '{print $2}') |"
  echo "| aptly | $(aptly version | sed 's/^aptly version: //') |"
  echo "| hyperfine | $(hyperfine --version | awk '{print $2}') |"
  echo "| sha256sum | $(sha256sum --version | head -1) |"
}

# Seconds between two `date +%s.%N` stamps.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# Median of the numbers on stdin (one per line).
median() { sort -g | awk '{a[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Records the load average before a phase (other work on the machine skews results).
note_load() { printf '%s\t%s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/results/load.tsv"; }
