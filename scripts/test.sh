#!/usr/bin/env bash
# The whole test suite: unit, router and black-box tests (real apt, real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --locked --all-targets
