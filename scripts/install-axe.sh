#!/usr/bin/env bash
# axe-core, the accessibility engine the browser tests run on every page state.
# Installed from npm into ./node_modules (not committed); the version is pinned here.
set -euo pipefail
AXE_VERSION="4.14.1"
cd "$(dirname "$0")/.."
target="node_modules/axe-core/axe.min.js"
if [ -f "$target" ] && grep -q "axe v${AXE_VERSION}" "$target"; then
  exit 0
fi
npm install --no-save --no-package-lock --no-audit --no-fund "axe-core@${AXE_VERSION}" >&2
test -f "$target"
