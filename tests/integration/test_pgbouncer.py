"""Several API processes through PgBouncer in transaction mode (spec §7, §12): two
``tierkeeper serve`` processes share one PostgreSQL through a real PgBouncer 1.18 (no
prepared statements survive a transaction there), and four client processes of 32 tasks
each admit one starter tenant through both at once: exactly its cap is admitted."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from adapters.sql.database import open_database, upgrade
from domain.ids import TenantId, TierId, UserId
from domain.tenants import SubscriptionStatus, Tenant, User
from tests.support import pgbouncer, postgres

pytestmark = pytest.mark.integration

PROCESSES = 4
TASKS = 32
TENANT = "t-pooled-starter"
STARTER_CAP = 50
MESSAGES = 4 * STARTER_CAP
READY_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[2]
TIERKEEPER = str(Path(sys.executable).parent / "tierkeeper")


@pytest.fixture(scope="module")
def pooled_url() -> Iterator[str]:
    """A fresh migrated database, and its URL through a transaction-mode PgBouncer whose
    pool (4 server connections) is smaller than the two servers' client pools together."""
    if not pgbouncer.available():
        pytest.fail("pgbouncer is not installed: run `make deps` (scripts/install-pgbouncer.sh)")
    with postgres.fresh_database("pgbouncer", durable=False) as direct:
        upgrade(direct)
        with pgbouncer.running_pgbouncer(postgres.admin_url(), pool_size=4) as port:
            yield pgbouncer.pooled_url(direct, port)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(environ: dict[str, str], log: Path) -> Iterator[str]:
    """``tierkeeper serve`` as the operator runs it, on a free port."""
    port = _free_port()
    command = [TIERKEEPER, "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=environ, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"serve not ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


async def _seed(url: str) -> None:
    now = datetime.now(UTC)
    db = await open_database(url, pool_size=2)
    try:
        tenant = Tenant(TenantId(TENANT), TierId("starter"), SubscriptionStatus.ACTIVE, "UTC", 1,
                        now)  # fmt: skip
        user = User(UserId("u-pooled"), "pooled@example.com", "no-login", tenant.id, now)
        await db.tenants.add(tenant, user)
    finally:
        await db.close()


async def _client(bases: list[str], token: str, messages: list[str]) -> dict[str, int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    outcomes: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=TASKS)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:

        async def task(index: int) -> None:
            base = bases[index % len(bases)]
            while not queue.empty():
                message = queue.get_nowait()
                response = await client.post(
                    f"{base}/api/v1/gateway/admit",
                    json={"tenant_id": TENANT, "message_id": message, "max_tokens": 100},
                )
                body = response.json()
                outcomes[str(response.status_code) + ":" + str(body.get("code", "admitted"))] += 1

        await asyncio.gather(*(task(i) for i in range(TASKS)))
    return dict(outcomes)


def _client_process(bases: list[str], token: str, messages: list[str]) -> dict[str, int]:
    return asyncio.run(_client(bases, token, messages))


def _libpq(url: str) -> str:
    import sqlalchemy as sa

    return (
        sa.make_url(url)
        .difference_update_query(["pooler"])
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def test_two_serve_processes_through_pgbouncer_admit_exactly_a_starter_tenants_cap(
    pooled_url: str, tmp_path: Path
) -> None:
    asyncio.run(_seed(pooled_url))
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TIERKEEPER_")},
        "TIERKEEPER_DATABASE_URL": pooled_url,
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "pgbouncer-test-platform-secret-0123456789",
    }
    token = subprocess.run(
        [TIERKEEPER, "tokens", "create", "--service", "gw"],
        env=environ, cwd=str(ROOT), capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    messages = [f"m-{i}" for i in range(MESSAGES)]
    with serve(environ, tmp_path / "a.log") as first, serve(environ, tmp_path / "b.log") as second:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
            futures = [
                pool.submit(_client_process, [first, second], token, messages[i::PROCESSES])
                for i in range(PROCESSES)
            ]
            tallies = [future.result(timeout=300) for future in futures]
    total: Counter[str] = Counter()
    for tally in tallies:
        total.update(tally)
    assert total == {"200:admitted": STARTER_CAP, "429:message_cap_reached": MESSAGES - STARTER_CAP}
    with psycopg.connect(_libpq(pooled_url)) as conn:
        days: list[Any] = conn.execute(
            "SELECT messages FROM usage_days WHERE tenant_id = %s", (TENANT,)
        ).fetchall()
        reservations = conn.execute(
            "SELECT count(*) FROM reservations WHERE tenant_id = %s", (TENANT,)
        ).fetchone()
    overshoot = sum(max(0, row[0] - STARTER_CAP) for row in days)
    assert overshoot == 0
    assert [row[0] for row in days] == [STARTER_CAP]
    assert reservations == (STARTER_CAP,)
