#!/usr/bin/env bash
# Install Debian's PgBouncer for the pooler tests (tests/integration/test_pgbouncer.py) and
# the pooled admission benchmark. The tests start their own pgbouncer process in transaction
# mode in front of the embedded PostgreSQL; nothing is configured system-wide, and the
# package's own service is left stopped. Idempotent: does nothing when pgbouncer is there.
set -euo pipefail

PGBOUNCER="${TIERKEEPER_PGBOUNCER:-/usr/sbin/pgbouncer}"

if [ -x "$PGBOUNCER" ]; then
    echo "pgbouncer already installed: $("$PGBOUNCER" --version 2>/dev/null | head -1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends pgbouncer
# the package starts a system service on its default port; the tests run their own
$SUDO systemctl stop pgbouncer 2>/dev/null || $SUDO service pgbouncer stop 2>/dev/null || true

"$PGBOUNCER" --version | head -1
