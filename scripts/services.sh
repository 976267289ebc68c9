#!/usr/bin/env bash
# The distributed set-up's components on this machine, for the scale-out tests and for trying
# asof on PostgreSQL + object storage: PostgreSQL from Debian's packages, s3s-fs (an S3
# server over a directory, built with cargo) and Azurite (Microsoft's Azure Storage
# emulator, from npm). Installs what is missing, caching the builds for the next run.
#
#   scripts/services.sh start [postgres|s3|azure ...]
#                                install what is missing, start them (all three by default),
#                                write the env file
#   scripts/services.sh stop     stop them (their data stays for the next start)
#   scripts/services.sh env      print the env file: `. <(scripts/services.sh env)`
#   scripts/services.sh status   say which are running
#
# Environment: ASOF_SERVICES_DIR (run state and data, /var/tmp/asof-services),
# ASOF_TOOLS_CACHE (built tools, /var/cache/asof-tests/tools), and the ports
# ASOF_PG_PORT (55432), ASOF_S3_PORT (9014), ASOF_AZURE_PORT (10010). Needs root for
# apt-get; PostgreSQL runs as the `postgres` user that Debian's package creates.
set -euo pipefail

STATE="$(realpath -m "${ASOF_SERVICES_DIR:-/var/tmp/asof-services}")"
TOOLS="${ASOF_TOOLS_CACHE:-/var/cache/asof-tests/tools}"
PG_PORT="${ASOF_PG_PORT:-55432}"
S3_PORT="${ASOF_S3_PORT:-9014}"
AZURE_PORT="${ASOF_AZURE_PORT:-10010}"
S3S_FS_VERSION=0.14.1
AZURITE_VERSION=3.37.0
# Azurite's well-known development account (public, documented by Microsoft).
AZURE_ACCOUNT=devstoreaccount1
AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
S3_ACCESS_KEY=asof-test
S3_SECRET_KEY=asof-test-secret

log() { echo "services: $*" >&2; }

wait_for_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$1 did not listen on 127.0.0.1:$2 within $3 s; its log: $STATE/$1.log"
  tail -n 20 "$STATE/$1.log" >&2 || true
  return 1
}

running() { # name
  [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null
}

# --- PostgreSQL ---------------------------------------------------------------------------

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && echo "$d"
}

install_postgres() {
  if [ -z "$(pg_bin)" ]; then
    log "installing postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
}

start_postgres() {
  local bin data="$STATE/pg"
  bin="$(pg_bin)"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    chown postgres:postgres "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >"$STATE/postgres-init.log"
  fi
  if runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then return 0; fi
  touch "$STATE/postgres.log"
  chown postgres:postgres "$STATE/postgres.log"
  # Sockets in the data directory: no dependence on /run/postgresql existing.
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$STATE/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=300 -c fsync=on" start >/dev/null
  wait_for_port postgres "$PG_PORT" 30
}

stop_postgres() {
  local bin
  bin="$(pg_bin)" || return 0
  [ -f "$STATE/pg/PG_VERSION" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
}

# --- s3s-fs -------------------------------------------------------------------------------

install_s3() {
  local bin="$TOOLS/cargo/bin/s3s-fs"
  if [ -x "$bin" ] && grep -q "^\"s3s-fs $S3S_FS_VERSION " "$TOOLS/cargo/.crates.toml" 2>/dev/null; then return 0; fi
  log "building s3s-fs $S3S_FS_VERSION with cargo (cached in $TOOLS/cargo)"
  mkdir -p "$TOOLS/cargo"
  cargo install --locked --quiet --root "$TOOLS/cargo" --version "$S3S_FS_VERSION" --features binary s3s-fs
}

start_s3() {
  running s3 && return 0
  # s3s-fs keeps a bucket as a directory: this one is the tests'.
  mkdir -p "$STATE/s3/asof-test"
  # From /: a server keeps its working directory, and the caller's may be deleted (a CI clone).
  (cd / && exec setsid "$TOOLS/cargo/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$STATE/s3" >"$STATE/s3.log" 2>&1) &
  echo $! >"$STATE/s3.pid"
  wait_for_port s3 "$S3_PORT" 30
}

# --- Azurite ------------------------------------------------------------------------------

install_azure() {
  local bin="$TOOLS/npm/node_modules/.bin/azurite-blob"
  if [ -x "$bin" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" "$TOOLS/npm/node_modules/azurite/package.json" 2>/dev/null; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    log "installing npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  log "installing azurite $AZURITE_VERSION with npm (cached in $TOOLS/npm)"
  mkdir -p "$TOOLS/npm"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "azurite@$AZURITE_VERSION" >/dev/null
}

start_azure() {
  running azure && return 0
  mkdir -p "$STATE/azure"
  (cd / && exec setsid "$TOOLS/npm/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" \
    --location "$STATE/azure" --skipApiVersionCheck --loose >"$STATE/azure.log" 2>&1) &
  echo $! >"$STATE/azure.pid"
  wait_for_port azure "$AZURE_PORT" 60
  create_azure_container asof-test
}

# Azurite starts empty; the tests' container is made with a Shared Key request (object
# stores have no call for it), signed as in Microsoft's "Authorize with Shared Key".
create_azure_container() { # name
  AZ_PORT="$AZURE_PORT" AZ_ACCOUNT="$AZURE_ACCOUNT" AZ_KEY="$AZURE_KEY" AZ_CONTAINER="$1" python3 - <<'PY'
import base64, hashlib, hmac, os, sys, urllib.request, urllib.error
from email.utils import formatdate
port, account, key, container = (os.environ[k] for k in ("AZ_PORT", "AZ_ACCOUNT", "AZ_KEY", "AZ_CONTAINER"))
date, version = formatdate(usegmt=True), "2021-08-06"
to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + f"x-ms-date:{date}\nx-ms-version:{version}\n" + \
    f"/{account}/{account}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}", "Content-Length": "0"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: it exists already
        sys.exit(f"creating Azurite container {container}: {e.code} {e.read()[:300]!r}")
PY
}

stop_pidfile() { # name
  if running "$1"; then
    kill "$(cat "$STATE/$1.pid")" 2>/dev/null || true
  fi
  rm -f "$STATE/$1.pid"
}

pg_running() {
  [ -n "$(pg_bin)" ] && [ -f "$STATE/pg/PG_VERSION" ] &&
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1
}

# The settings of the services that run, for tests and for trying asof on them.
write_env() {
  {
    if pg_running; then
      echo "export ASOF_TEST_POSTGRES=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    fi
    if running s3; then
      echo "export ASOF_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
      echo "export ASOF_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY"
      echo "export ASOF_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
    fi
    if running azure; then
      echo "export ASOF_TEST_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT/$AZURE_ACCOUNT"
      echo "export ASOF_TEST_AZURE_ACCOUNT=$AZURE_ACCOUNT"
      echo "export ASOF_TEST_AZURE_KEY='$AZURE_KEY'"
    fi
  } >"$STATE/env"
}

case "${1:-}" in
  start)
    shift
    mkdir -p "$STATE"
    for s in "${@:-postgres s3 azure}"; do
      for one in $s; do
        case "$one" in
          postgres) install_postgres; start_postgres ;;
          s3) install_s3; start_s3 ;;
          azure) install_azure; start_azure ;;
          *) echo "unknown service: $one (postgres, s3, azure)" >&2; exit 2 ;;
        esac
      done
    done
    write_env
    log "running; their settings: . $STATE/env"
    ;;
  stop)
    stop_pidfile s3
    stop_pidfile azure
    stop_postgres
    if [ -d "$STATE" ]; then write_env; fi
    ;;
  env)
    cat "$STATE/env"
    ;;
  status)
    for s in s3 azure; do if running "$s"; then echo "$s: running"; else echo "$s: stopped"; fi; done
    if pg_running; then
      echo "postgres: running"
    else
      echo "postgres: stopped"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
