#!/usr/bin/env bash
# The whole test suite: unit, router and black-box tests (real apt, real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# PostgreSQL, an S3 server (s3s-fs) and Azurite for the catalog and blob conformance suites
# and tests/distributed.rs; their settings in ASOF_TEST_*.
scripts/services.sh start postgres s3 azure
. "${ASOF_SERVICES_DIR:-/var/tmp/asof-services}/env"
cargo test --locked --all-targets
