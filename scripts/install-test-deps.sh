#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real (apt, gpgv, the Debian archive
# keyring, headless Chromium for the HTML page tests, and debootstrap + curl for the Debian
# trixie chroot that tests apt >= 2.7, see scripts/trixie-chroot.sh). Idempotent: does nothing when they
# are present. Needs root for apt-get.
set -euo pipefail
needed=()
for pkg in apt gpgv debian-archive-keyring chromium debootstrap curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || needed+=("$pkg")
done
if [ ${#needed[@]} -gt 0 ]; then
  echo "installing: ${needed[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}"
fi
