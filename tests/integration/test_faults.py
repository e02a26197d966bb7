"""Faults from outside the process: the database restarting under load, Vault going away, a
provider that never answers, a config root that cannot take a write.

Each answer must be a clean one (a status and a ``{code, detail}`` body, never a 500 or a
stack trace) and no fault may lose, double or damage anything that was already acknowledged.
Every load here is a few seconds on 127.0.0.1 at most.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from adapters.security.passwords import Argon2PasswordHasher
from adapters.sql.database import upgrade
from domain.ids import TenantId, TierId, UserId
from domain.tenants import SubscriptionStatus, Tenant, User
from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.app_server import running_app
from tests.support.hanging_server import hanging_server
from tests.support.openbao import OpenBaoServer, start_openbao
from tests.support.restartable_postgres import RestartablePostgres, restartable_postgres

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
OPENAI_KEY = "sk-test0123456789abcdef"
PROBE_TIMEOUT_S = 0.5
TEST_HASHER = Argon2PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)

LOAD_WORKERS = 12
LOAD_TENANTS = 64  # enough that no tenant reaches its daily cap during the run
UP_BEFORE_S = 1.0
DOWN_FOR_S = 1.5
UP_AFTER_S = 1.5
REQUEST_TIMEOUT_S = 10.0
HARD_STOP_S = 30.0


def base_environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'tierkeeper.sqlite3'}",
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "fault-test-platform-secret-0123456789",
        **extra,
    }


@pytest.fixture
async def services_for(tmp_path: Path) -> AsyncIterator[Any]:
    """A factory of services over the real adapters for an environment; all closed after."""
    built: list[Services] = []

    async def build(environ: Mapping[str, str], *, migrate: bool = True) -> Services:
        services = await build_services(
            Settings.from_environ(environ),
            probe_timeout_s=PROBE_TIMEOUT_S,
            migrate=migrate,
            password_hasher=TEST_HASHER,
        )
        built.append(services)
        return services

    yield build
    for services in built:
        await services.close()


async def seed_tenants(services: Services, ids: list[str], tier: str) -> None:
    now = datetime.now(UTC)
    for tenant_id in ids:
        await services.ports.tenants.add(
            Tenant(TenantId(tenant_id), TierId(tier), SubscriptionStatus.ACTIVE, "UTC", 1, now),
            User(
                UserId(f"u-{tenant_id}"),
                f"{tenant_id}@faults.invalid",
                "x",
                TenantId(tenant_id),
                now,
            ),
        )


async def sign_up(client: AsyncTestClient[Any], email: str) -> tuple[str, TenantId]:
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    client.cookies.clear()
    return body["token"], TenantId(body["tenant"]["id"])


def assert_clean_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"code", "detail"}
    if code is not None:
        assert body["code"] == code
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


# --- (1) the database restarts while admits run ------------------------------------------


@pytest.fixture
def restarting_postgres() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as server:
        upgrade(server.url)
        yield server


async def _admit_loop(
    client: httpx.AsyncClient,
    worker: int,
    stop_at: list[float],
    answers: list[tuple[str, str, int, str]],
    timeline: list[tuple[float, int]],
) -> None:
    n = 0
    while time.monotonic() < stop_at[0]:
        tenant = f"t-{(worker + n) % LOAD_TENANTS}"
        message = f"w{worker}-{n}"
        n += 1
        response = await client.post(
            "/api/v1/gateway/admit",
            json={"tenant_id": tenant, "message_id": message, "max_tokens": 100},
        )
        answers.append((tenant, message, response.status_code, response.text))
        timeline.append((time.monotonic(), response.status_code))
        if response.status_code != 200:
            await asyncio.sleep(0.02)  # a gateway backs off a little on errors


async def test_a_database_restart_under_load_answers_503_and_loses_or_doubles_no_admit(
    restarting_postgres: RestartablePostgres, tmp_path: Path, services_for: Any
) -> None:
    """Admits racing a PostgreSQL fast shutdown and restart, against the app under uvicorn:
    every answer is 200 or a clean 503; once the database is back, retrying the failed
    message ids (as the gateway does) leaves the database holding exactly the admits
    acknowledged, each counted once."""
    environ = base_environ(tmp_path, TIERKEEPER_DATABASE_URL=restarting_postgres.url)
    services = await services_for(environ, migrate=False)
    tenants = [f"t-{i}" for i in range(LOAD_TENANTS)]
    await seed_tenants(services, tenants, "premium")
    token = (await services.accounts.create_service_token("faults")).reveal()
    await services.close()
    answers: list[tuple[str, str, int, str]] = []
    readiness: list[int] = []
    timeline: list[tuple[float, int]] = []

    with running_app({**os.environ, **environ}, tmp_path) as app:
        async with httpx.AsyncClient(
            base_url=app.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=LOAD_WORKERS + 2),
        ) as client:
            stop_at = [time.monotonic() + HARD_STOP_S]  # moved closer once the database is back
            load = asyncio.gather(
                *(_admit_loop(client, w, stop_at, answers, timeline) for w in range(LOAD_WORKERS))
            )
            await asyncio.sleep(UP_BEFORE_S)
            await asyncio.to_thread(restarting_postgres.stop)
            await asyncio.sleep(DOWN_FOR_S / 2)
            readiness.append((await client.get("/readyz")).status_code)
            await asyncio.sleep(DOWN_FOR_S / 2)
            await asyncio.to_thread(restarting_postgres.start)
            restarted_at = time.monotonic()
            stop_at[0] = restarted_at + UP_AFTER_S
            await asyncio.wait_for(load, HARD_STOP_S)

            failed = [(t, m) for t, m, status, _ in answers if status != 200]
            retried = []
            for tenant, message in failed:  # the gateway retries what it was not told about
                response = await client.post(
                    "/api/v1/gateway/admit",
                    json={"tenant_id": tenant, "message_id": message, "max_tokens": 100},
                )
                retried.append(response.status_code)
            ready_after = (await client.get("/readyz")).status_code
        log = app.log()

    statuses = [status for _, _, status, _ in answers]
    unclean = sorted({(s, text) for _, _, s, text in answers if s not in (200, 503)})
    unhandled = sorted(set(re.findall(r"unhandled (\S+) on", log)))
    assert not unclean, f"unclean answers {unclean[:5]}; the app logged unhandled {unhandled}"
    for _, _, status, text in answers:
        if status == 503:
            assert_clean_error_text(text)
    assert 503 in statuses, "the outage was not seen by any request"
    recovered = [
        at - restarted_at for at, status in timeline if at > restarted_at and status == 200
    ]
    assert recovered, f"no admit succeeded in the {UP_AFTER_S} s after the restart"
    assert readiness == [503]
    assert ready_after == 200
    assert retried == [200] * len(failed)
    assert unhandled == []  # (SQLAlchemy's pool may log a dead connection's close: fine)

    acknowledged = {(t, m) for t, m, status, _ in answers if status == 200} | set(failed)
    with psycopg.connect(_libpq(restarting_postgres.url)) as conn:
        rows = conn.execute("SELECT tenant_id, message_id FROM reservations").fetchall()
        days = dict(conn.execute("SELECT tenant_id, sum(messages) FROM usage_days GROUP BY 1"))
    in_database = {(t, m) for t, m in rows}
    assert in_database == acknowledged
    assert len(rows) == len(acknowledged) == len(answers)
    for tenant in tenants:
        assert days.get(tenant, 0) == sum(1 for t, _ in acknowledged if t == tenant)


def assert_clean_error_text(text: str) -> None:
    body = json.loads(text)
    assert set(body) >= {"code", "detail"}
    assert "Traceback" not in text


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- (2) Vault stops ---------------------------------------------------------------------


@pytest.fixture
def own_openbao() -> Iterator[OpenBaoServer]:
    """An OpenBao of this test's own: the test stops it, so the shared one stays up."""
    server = start_openbao()
    try:
        yield server
    finally:
        server.stop()


async def test_with_vault_stopped_byok_reads_are_503_and_other_tenants_still_admit(
    own_openbao: OpenBaoServer, tmp_path: Path, services_for: Any
) -> None:
    environ = base_environ(
        tmp_path,
        TIERKEEPER_KEY_STORE="vault",
        TIERKEEPER_VAULT_ADDR=own_openbao.addr,
        TIERKEEPER_VAULT_TOKEN=own_openbao.root_token,
        TIERKEEPER_SECRET_KEY="",
    )
    services = await services_for(environ)
    await seed_tenants(services, ["plain-starter"], "starter")
    token = (await services.accounts.create_service_token("faults")).reveal()
    gateway = {"Authorization": f"Bearer {token}"}

    async with AsyncTestClient(create_app(services)) as client:
        customer, tenant_id = await sign_up(client, "byok-vault@faults.invalid")
        await services.tenants.change_tier(tenant_id, "byok", SubscriptionStatus.ACTIVE)
        headers = {"Authorization": f"Bearer {customer}"}
        saved = await client.put(
            "/api/v1/settings/llm-config/",
            json={"provider": "openai", "api_key": OPENAI_KEY, "model_preference": "gpt-4o"},
            headers=headers,
        )
        assert saved.status_code == 200, saved.text

        own_openbao.stop()

        tested = await client.post("/api/v1/settings/llm-config/test", json={}, headers=headers)
        assert_clean_error(tested, 503, "key_store_unavailable")
        replaced = await client.put(
            "/api/v1/settings/llm-config/",
            json={"provider": "openai", "api_key": OPENAI_KEY + "x", "model_preference": "gpt-4o"},
            headers=headers,
        )
        assert_clean_error(replaced, 503, "key_store_unavailable")
        read = await client.get("/api/v1/settings/llm-config/", headers=headers)
        assert read.status_code in (200, 503), read.text
        if read.status_code == 503:
            assert_clean_error(read, 503, "key_store_unavailable")
        else:
            assert read.json()["api_key_masked"].endswith(OPENAI_KEY[-4:])
        ready = await client.get("/readyz")
        assert_clean_error(ready, 503, "key_store_unavailable")

        for n in range(5):
            admitted = await client.post(
                "/api/v1/gateway/admit",
                json={"tenant_id": "plain-starter", "message_id": f"m{n}", "max_tokens": 100},
                headers=gateway,
            )
            assert admitted.status_code == 200, admitted.text
            assert admitted.json()["admitted"] is True


# --- (3) a provider that never answers ---------------------------------------------------


async def test_a_hanging_provider_times_out_as_unreachable_after_about_the_timeout(
    tmp_path: Path, services_for: Any
) -> None:
    with hanging_server() as url:
        environ = base_environ(tmp_path, TIERKEEPER_PROVIDER_OPENAI_BASE_URL=url)
        services = await services_for(environ)
        async with AsyncTestClient(create_app(services)) as client:
            customer, _ = await sign_up(client, "hanging@faults.invalid")
            started = time.monotonic()
            response = await client.post(
                "/api/v1/settings/llm-config/test",
                json={"provider": "openai", "api_key": OPENAI_KEY, "model_preference": "gpt-4o"},
                headers={"Authorization": f"Bearer {customer}"},
            )
            elapsed_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "unreachable"
    assert PROBE_TIMEOUT_S * 1000 * 0.9 <= body["latency_ms"] <= PROBE_TIMEOUT_S * 1000 * 3
    assert elapsed_s < PROBE_TIMEOUT_S + 2.0
    assert OPENAI_KEY not in response.text


# --- (4) the config root cannot take a write ---------------------------------------------

FILE_SIZE_LIMIT_BYTES = 64
"""Smaller than any openclaw.json: every write fails part-way, as on a full disk."""


def _limit_file_size() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


async def test_a_full_disk_fails_regenerate_with_a_summary_and_keeps_old_configs(
    postgres_database: str, tmp_path: Path, services_for: Any
) -> None:
    """``tierkeeper configs regenerate`` in a process whose writes fail part-way (the file
    size limit stands in for a full disk): exit 1, every tenant counted as failed with its
    reason, each old file byte-for-byte intact and no temporary file left behind."""
    upgrade(postgres_database)
    environ = base_environ(tmp_path, TIERKEEPER_DATABASE_URL=postgres_database)
    services = await services_for(environ, migrate=False)
    ids = ["disk-a", "disk-b", "disk-c"]
    await seed_tenants(services, ids, "starter")
    first = await services.configs.regenerate(None)
    assert first.ok() and first.written == len(ids)
    root = tmp_path / "openclaw"
    before = _snapshot(root)
    assert len(before) == len(ids)
    for tenant_id in ids:  # a tier change straight in the database: each config must change
        tenant = await services.ports.tenants.get(TenantId(tenant_id))
        await services.ports.tenants.save(attrs.evolve(tenant, tier=TierId("premium")))

    command = [sys.executable, "-c", "from entrypoints.cli import main; raise SystemExit(main())",
               "configs", "regenerate"]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        env={**os.environ, **environ, "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_file_size,  # the fault is the point
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    for tenant_id in ids:
        assert f"failed {tenant_id}:" in output
    assert _snapshot(root) == before
    assert not list(root.rglob("*.tmp"))
