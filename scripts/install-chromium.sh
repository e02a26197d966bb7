#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser/).
# Playwright's own browser download does not work on our CI machines, so the tests launch
# /usr/bin/chromium instead. Idempotent: does nothing when Chromium is already there.
set -euo pipefail

CHROMIUM="${TIERKEEPER_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core

"$CHROMIUM" --version
