#!/usr/bin/env bash
# Builds (once) and prints the path of a minimal Debian trixie chroot, for the tests that run
# apt >= 2.7 (tests/apt3_snapshots.rs). The chroot is cached outside the repository and
# rebuilt when older than ASOF_CHROOT_MAX_AGE_DAYS (7) days, so that its apt stays current.
#
#   scripts/trixie-chroot.sh        prints the chroot's directory on stdout, progress on stderr
#
# Tests never write into that directory: they mount an overlay over it (lower, read-only).
# Layout: $CACHE/trixie is a symlink to $CACHE/trixie-<UTC build time>. A rebuild creates a
# new directory and swaps the symlink atomically, so a test that resolved the old directory
# keeps a complete tree; directories replaced more than an hour ago are removed.
#
# Exit codes: 0 ready; 75 Debian's mirror cannot be reached (the caller skips, loudly);
# anything else is a real failure. Needs root (debootstrap, chroot).
#
# Environment: ASOF_CHROOT_CACHE (/var/cache/asof-tests), ASOF_CHROOT_MAX_AGE_DAYS (7),
# ASOF_DEBIAN_MIRROR (http://deb.debian.org/debian).
set -euo pipefail

CACHE="${ASOF_CHROOT_CACHE:-/var/cache/asof-tests}"
MAX_AGE_DAYS="${ASOF_CHROOT_MAX_AGE_DAYS:-7}"
MIRROR="${ASOF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LINK="$CACHE/trixie"
UNREACHABLE=75

log() { printf 'trixie-chroot: %s\n' "$*" >&2; }

fresh() { # <dir>: a complete chroot, young enough
    [[ -f "$1/.asof-chroot-built" ]] && [[ -z "$(find "$1/.asof-chroot-built" -mtime "+$MAX_AGE_DAYS" -print)" ]]
}

remove_replaced() { # trees swapped out over an hour ago: no test still reads them
    local d
    for d in "$CACHE"/trixie-*; do
        [[ -d "$d" && "$d" != "$(readlink -f "$LINK")" ]] || continue
        if [[ ! -f "$d/.asof-replaced" || -n "$(find "$d/.asof-replaced" -mmin +60 -print)" ]]; then
            rm -rf --one-file-system -- "$d"
        fi
    done
    rm -rf --one-file-system -- "$CACHE"/trixie.build.*
}

mkdir -p "$CACHE"
# One builder at a time: test processes started together wait for the first one's build.
exec 9>"$CACHE/trixie.lock"
flock 9

if [[ -L "$LINK" ]] && fresh "$LINK"; then
    remove_replaced
    readlink -f "$LINK"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    log "debootstrap is not installed (scripts/install-test-deps.sh installs it)"
    exit 1
fi
if ! curl -fsS --max-time 20 -o /dev/null "$MIRROR/dists/trixie/InRelease"; then
    log "cannot reach $MIRROR/dists/trixie/InRelease"
    if [[ -L "$LINK" && -f "$LINK/.asof-chroot-built" ]]; then
        log "using the stale chroot built $(cat "$LINK/.asof-chroot-built")"
        readlink -f "$LINK"
        exit 0
    fi
    exit "$UNREACHABLE"
fi

started=$(date +%s)
TMP="$(mktemp -d "$CACHE/trixie.build.XXXXXX")"
trap 'rm -rf --one-file-system -- "$TMP"' EXIT
chmod 0755 "$TMP" # mktemp made it 0700: apt's _apt user must traverse the root
log "building a trixie chroot in $TMP from $MIRROR (a few minutes, once a week)"
# minbase: apt, dpkg and their libraries; nothing that starts services.
if ! debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    trixie "$TMP" "$MIRROR" >"$CACHE/trixie-build.log" 2>&1; then
    tail -n 20 "$CACHE/trixie-build.log" >&2
    if ! curl -fsS --max-time 20 -o /dev/null "$MIRROR/dists/trixie/InRelease"; then
        log "lost $MIRROR while building"
        exit "$UNREACHABLE"
    fi
    log "debootstrap failed (full log: $CACHE/trixie-build.log)"
    exit 1
fi
# The downloaded .debs and lists are not needed once installed; keep the lower layer small.
rm -rf -- "$TMP"/var/cache/apt/archives/*.deb "$TMP"/var/cache/apt/*.bin "$TMP"/var/lib/apt/lists/*_*
# No sources: each test writes its own, and nothing may reach deb.debian.org by accident.
rm -f -- "$TMP"/etc/apt/sources.list "$TMP"/etc/apt/sources.list.d/*
chroot "$TMP" apt --version >"$TMP/.asof-apt-version"
date -u +%Y-%m-%dT%H:%M:%SZ >"$TMP/.asof-chroot-built"

dest="$CACHE/trixie-$(date -u +%Y%m%dT%H%M%SZ)"
mv -- "$TMP" "$dest"
trap - EXIT
old="$(readlink -f "$LINK" 2>/dev/null || true)"
ln -sfn -- "$(basename "$dest")" "$LINK.new"
mv -T -- "$LINK.new" "$LINK"
[[ -n "$old" && -d "$old" ]] && touch "$old/.asof-replaced"
remove_replaced
log "built in $(($(date +%s) - started)) s: $(cat "$dest/.asof-apt-version")"
printf '%s\n' "$dest"
