#!/usr/bin/env bash
# scripts/distributed-demo.sh: the distributed set-up on this machine, after
# `scripts/services.sh start`: a publisher records the test archive's two versions in
# PostgreSQL and the s3s-fs bucket, and two `asof serve` frontends (ports 8081 and 8082, each
# with a data directory of its own, as on two hosts) serve them. Prints apt sources lines for
# both; Ctrl-C stops the frontends. State: /tmp/asof-distributed-demo (database asof_demo,
# bucket prefix asof-test/asof-demo), replaced on each run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR=${ASOF_SERVICES_DIR:-/var/tmp/asof-services}
[[ -s $STATE_DIR/env ]] || {
  echo "no services: run scripts/services.sh start first" >&2
  exit 2
}
# shellcheck disable=SC1091
. "$STATE_DIR/env"
[[ -n ${ASOF_TEST_POSTGRES:-} && -n ${ASOF_TEST_S3_ENDPOINT:-} ]] || {
  echo "PostgreSQL and S3 must both run: scripts/services.sh start postgres s3" >&2
  exit 2
}
(cd "$ROOT" && cargo build --release --locked --bin asof -q)
ASOF=$ROOT/target/release/asof
DEMO=/tmp/asof-distributed-demo
rm -rf "$DEMO" "$STATE_DIR/s3/asof-test/asof-demo"
psql "$ASOF_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS asof_demo WITH (FORCE)" -c "CREATE DATABASE asof_demo"

# The standard variables of any S3 client, and asof's two settings.
export AWS_ENDPOINT=$ASOF_TEST_S3_ENDPOINT AWS_ACCESS_KEY_ID=$ASOF_TEST_S3_ACCESS_KEY_ID \
  AWS_SECRET_ACCESS_KEY=$ASOF_TEST_S3_SECRET_ACCESS_KEY AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
export ASOF_CATALOG=${ASOF_TEST_POSTGRES%/*}/asof_demo ASOF_BLOBS=s3://asof-test/asof-demo

first=$("$ASOF" --data "$DEMO/publisher" publish debian "$ROOT/fixtures/apt/v1")
sleep 1.1 # the next snapshot gets the next second
second=$("$ASOF" --data "$DEMO/publisher" publish debian "$ROOT/fixtures/apt/v2")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for port in 8081 8082; do
  "$ASOF" --data "$DEMO/frontend-$port" serve --listen "127.0.0.1:$port" >"$DEMO/frontend-$port.log" 2>&1 &
  pids+=($!)
done
for port in 8081 8082; do
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
done
keyring=$ROOT/fixtures/keys/test-signing.gpg
cat <<EOT
Catalog $ASOF_CATALOG, blobs $ASOF_BLOBS; snapshots $first and $second.
Both frontends serve both snapshots (hello-asof 1.0-1, then 1.1-1):

  deb [signed-by=$keyring] http://127.0.0.1:8081/debian/$first/ stable main
  deb [signed-by=$keyring] http://127.0.0.1:8082/debian/$second/ stable main

Publish more with the same environment, e.g.
  ASOF_CATALOG=$ASOF_CATALOG ASOF_BLOBS=$ASOF_BLOBS AWS_ENDPOINT=$AWS_ENDPOINT ... \\
    $ASOF --data $DEMO/publisher publish debian <tree>
and both frontends serve it at once. Logs: $DEMO/frontend-*.log. Ctrl-C stops them.
EOT
wait
