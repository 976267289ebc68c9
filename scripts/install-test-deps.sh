#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (apt, gpgv, the Debian archive
# keyring, and headless Chromium for the HTML page tests). Idempotent: does nothing when they
# are present. Needs root for apt-get.
set -euo pipefail
needed=()
for pkg in apt gpgv debian-archive-keyring chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || needed+=("$pkg")
done
if [ ${#needed[@]} -gt 0 ]; then
  echo "installing: ${needed[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}"
fi
