#!/usr/bin/env bash
# The whole test suite: unit, router and black-box tests (real apt, real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# PostgreSQL for the catalog conformance suite (src/catalog/pg); its URL in ASOF_TEST_POSTGRES.
scripts/services.sh start postgres
. "${ASOF_SERVICES_DIR:-/var/tmp/asof-services}/env"
cargo test --locked --all-targets
