#!/usr/bin/env bash
# benches/lifecycle.sh: what retention costs, measured on a generated Debian-shaped history.
#
#   1. asof-bench gen: PACKAGES binary packages, PUBLISHES publishes at 1% churn
#   2. each tree published into one archive
#   3. the size of the entries_closed index retention reads (sqlite3 dbstat), per closed row
#      and per changed path
#   4. `asof retention apply --dry-run` and `asof retention apply` with --keep-last 1 timed,
#      then `asof verify` (every kept snapshot must still hash to its digest)
#
# Environment: PACKAGES (default 20000), PUBLISHES (11), ASOF_BENCH_DIR (/tmp/asof-lifecycle),
# PROFILE (release; debug to reuse a test build). Needs sqlite3 (apt-get install sqlite3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${PROFILE:-release}
W=${ASOF_BENCH_DIR:-/tmp/asof-lifecycle}
PACKAGES=${PACKAGES:-20000}
PUBLISHES=${PUBLISHES:-11}
if [[ $PROFILE == release ]]; then
  cargo build --release --bins --manifest-path "$ROOT/Cargo.toml" >&2
fi
ASOF=$ROOT/target/$PROFILE/asof
BENCH=$ROOT/target/$PROFILE/asof-bench
command -v sqlite3 >/dev/null || apt-get install -y sqlite3 >&2

rm -rf "$W" && mkdir -p "$W"
"$BENCH" gen --out "$W/gen" --packages "$PACKAGES" --publishes "$PUBLISHES" --size-scale 0.0001 >/dev/null
for tree in "$W"/gen/[0-9]*; do
  "$ASOF" --data "$W/data" publish growth "$tree" >/dev/null 2>&1
done
DB=$W/data/asof.db
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
read -r index_bytes closed_rows < <(sqlite3 -separator ' ' "$DB" \
  "SELECT SUM(pgsize), SUM(ncell) FROM dbstat WHERE name = 'entries_closed';")
changes=$(sqlite3 "$DB" "SELECT SUM(added + changed + removed) FROM snapshots WHERE seq > 1;")
echo "entries_closed: $index_bytes bytes, $closed_rows closed rows ($((index_bytes / closed_rows)) B each), $changes changed paths ($((index_bytes / changes)) B per changed path)"

"$ASOF" --data "$W/data" archive retention growth --keep-last 1 2>/dev/null
t0=$(date +%s%N)
"$ASOF" --data "$W/data" retention apply growth --dry-run >/dev/null 2>"$W/dry-run.txt"
t1=$(date +%s%N)
"$ASOF" --data "$W/data" retention apply growth >/dev/null 2>"$W/apply.txt"
t2=$(date +%s%N)
echo "dry run: $(((t1 - t0) / 1000000)) ms: $(head -1 "$W/dry-run.txt")"
echo "apply:   $(((t2 - t1) / 1000000)) ms: $(head -1 "$W/apply.txt")"
"$ASOF" --data "$W/data" verify 2>&1 | tail -1
