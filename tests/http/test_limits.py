"""Issue #13 as a customer would try it: every bullet is now refused or counted correctly,
and every bad input is a 4xx ``{code, detail, field}`` (product spec §2, §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from adapters.sql.database import upgrade
from adapters.sql.urls import sync_url
from domain.secrets import Secret
from entrypoints.bootstrap import Services, assemble, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.fakes import FixedClock
from tests.http.conftest import (
    PROBE_TIMEOUT_S,
    TEST_PASSWORD_HASHER,
    Customer,
    key_for,
    make_active,
    sign_up,
)
from tests.support import postgres

pytestmark = pytest.mark.http


async def admit(
    client: AsyncTestClient[Any], headers: dict[str, str], tenant: str, mid: str, **kw: Any
) -> Any:
    return await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": tenant, "message_id": mid, **kw},
        headers=headers,
    )


async def settle(
    client: AsyncTestClient[Any],
    headers: dict[str, str],
    tenant: str,
    mid: str,
    model: str,
    tokens: int,
    credential: str,
) -> Any:
    return await client.post(
        "/api/v1/gateway/settle",
        json={"tenant_id": tenant, "message_id": mid, "model": model, "input_tokens": tokens,
              "output_tokens": 0, "credential": credential},
        headers=headers,
    )  # fmt: skip


async def test_a_zone_change_at_the_cap_admits_nothing_more_that_day(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    """A starter tenant at 50/50 moving to Los Angeles used to be admitted 50 more at once."""
    await make_active(services, customer.tenant_id)
    for n in range(50):
        admitted = await admit(client, service_headers, customer.tenant_id, f"m{n}", max_tokens=10)
        assert admitted.status_code == 200, (n, admitted.text)
    moved = await client.patch(
        "/api/v1/tenant", json={"timezone": "America/Los_Angeles"}, headers=customer.headers
    )
    assert moved.status_code == 200
    pending = moved.json()["pending_timezone"]
    assert pending["timezone"] == "America/Los_Angeles"
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert pending["applies_at"] == usage["day"]["resets_at"]
    for n in range(50, 60):
        refused = await admit(client, service_headers, customer.tenant_id, f"m{n}", max_tokens=10)
        assert refused.status_code == 429
        assert refused.json()["code"] == "message_cap_reached"
    assert usage["day"]["messages_used"] == 50


@pytest.fixture
async def clock() -> FixedClock:
    return FixedClock(datetime(2026, 6, 30, 12, 0, tzinfo=UTC))


@pytest.fixture
async def clocked(services: Services, clock: FixedClock) -> AsyncIterator[AsyncTestClient[Any]]:
    """The same database and adapters, with a clock the test moves."""
    ports = attrs.evolve(services.ports, clock=clock)
    timed = assemble(services.settings, services.catalog, ports, services.close, services.webhooks)
    async with AsyncTestClient(create_app(timed)) as test_client:
        test_client.app.state.timed = timed
        yield test_client


async def test_kiritimati_on_the_last_utc_day_of_a_period_does_not_open_the_next_budget(
    clocked: AsyncTestClient[Any], services: Services, clock: FixedClock
) -> None:
    customer = await sign_up(clocked)
    await make_active(services, customer.tenant_id)
    timed: Services = clocked.app.state.timed
    token = await timed.accounts.create_service_token("gateway-kiritimati")
    gateway = {"Authorization": f"Bearer {token.reveal()}"}
    spent = await settle(clocked, gateway, customer.tenant_id, "big", "moonshot/kimi-k2.5",
                         500_000, "platform")  # fmt: skip
    assert spent.status_code == 200
    assert (await admit(clocked, gateway, customer.tenant_id, "a1")).json()["code"] == (
        "token_budget_exhausted"
    )
    moved = await clocked.patch(
        "/api/v1/tenant", json={"timezone": "Pacific/Kiritimati"}, headers=customer.headers
    )
    assert moved.json()["pending_timezone"] == {
        "timezone": "Pacific/Kiritimati",
        "applies_at": "2026-07-01T00:00:00Z",
    }
    clock.advance(hours=11, minutes=30)  # 23:30 UTC: July 1 13:30 in Kiritimati
    refused = await admit(clocked, gateway, customer.tenant_id, "a2")
    assert (refused.status_code, refused.json()["code"]) == (429, "token_budget_exhausted")
    usage = (await clocked.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["period"]["resets_at"] == "2026-07-01T00:00:00Z"
    clock.advance(hours=1)  # the UTC period has ended: the first Kiritimati one starts there
    admitted = await admit(clocked, gateway, customer.tenant_id, "a3")
    assert admitted.status_code == 200, admitted.text
    tenant = (await clocked.get("/api/v1/tenant", headers=customer.headers)).json()
    assert (tenant["timezone"], tenant["pending_timezone"]) == ("Pacific/Kiritimati", None)


async def test_tenant_credential_on_a_tenant_without_its_own_key_counts_as_platform(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    """A premium tenant settling 2,000,000 Opus tokens as ``tenant`` used to count nothing."""
    await make_active(services, customer.tenant_id, "premium")
    chosen = await client.patch(
        "/api/v1/tenant",
        json={"model_preference": "anthropic/claude-opus-4-6"},
        headers=customer.headers,
    )
    assert chosen.status_code == 200
    assert (await admit(client, service_headers, customer.tenant_id, "o1")).status_code == 200
    settled = await settle(client, service_headers, customer.tenant_id, "o1",
                           "anthropic/claude-opus-4-6", 2_000_000, "tenant")  # fmt: skip
    assert settled.json() == {
        "settled": True,
        "counted_as": "platform",
        "anomaly": "tenant_key_not_routed",
    }
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["period"]["tokens_used"] == 3_340_000  # 2,000,000 × 1.67
    refused = await admit(client, service_headers, customer.tenant_id, "o2")
    assert (refused.status_code, refused.json()["code"]) == (429, "token_budget_exhausted")
    records = await services.ports.ledger.usage_records(
        datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    )
    assert [r.credential.value for r in records] == ["platform"]  # priced by the report


async def test_byok_past_its_fallback_budget_gets_no_platform_fallbacks(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    """A BYOK tenant at 600,400 of its 500,000 fallback tokens used to keep its fallbacks."""
    await make_active(services, customer.tenant_id, "byok")
    stored = await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key_for("openai"), "model_preference": "gpt-4.1"},
        headers=customer.headers,
    )
    assert stored.status_code == 200
    fresh = (await admit(client, service_headers, customer.tenant_id, "b0")).json()
    assert fresh["model"]["fallbacks"]
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["platform_fallback"]["tokens_reserved"] == 16_000
    await settle(client, service_headers, customer.tenant_id, "b0", "moonshot/kimi-k2.5",
                 600_400, "platform")  # fmt: skip
    admitted = await admit(client, service_headers, customer.tenant_id, "b1")
    assert admitted.status_code == 200
    assert admitted.json()["model"] == {"primary": "byok-openai/gpt-4.1", "fallbacks": []}
    failed = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "openai", "status_code": 401},
        headers=service_headers,
    )
    assert failed.json() == {"status": "invalid"}
    refused = await admit(client, service_headers, customer.tenant_id, "b2")
    assert (refused.status_code, refused.json()["code"]) == (429, "token_budget_exhausted")


async def test_usage_shows_tokens_reserved(
    client: AsyncTestClient[Any],
    customer: Customer,
    services: Services,
    service_headers: dict[str, str],
) -> None:
    await make_active(services, customer.tenant_id)
    await client.post(
        "/api/v1/gateway/admit",
        json={"tenant_id": customer.tenant_id, "message_id": "r1", "max_tokens": 1234},
        headers=service_headers,
    )
    period = (await client.get("/api/v1/usage", headers=customer.headers)).json()["period"]
    assert (period["tokens_used"], period["tokens_reserved"]) == (0, 1234)
    await settle(client, service_headers, customer.tenant_id, "r1", "moonshot/kimi-k2.5", 100,
                 "platform")  # fmt: skip
    period = (await client.get("/api/v1/usage", headers=customer.headers)).json()["period"]
    assert (period["tokens_used"], period["tokens_reserved"]) == (100, 0)


async def test_a_key_with_a_hash_is_stored_and_written_alike(
    client: AsyncTestClient[Any], customer: Customer, services: Services, environ: dict[str, str]
) -> None:
    """It used to answer 422 with the key stored and the old one left in .env."""
    await make_active(services, customer.tenant_id, "byok")
    key = key_for("openai", "a") + "#x"
    stored = await client.put(
        "/api/v1/settings/llm-config/",
        json={"provider": "openai", "api_key": key, "model_preference": "gpt-4.1"},
        headers=customer.headers,
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["api_key_masked"] == "sk-…" + key[-4:]
    shown = await client.get("/api/v1/settings/llm-config/", headers=customer.headers)
    assert shown.json()["api_key_masked"] == "sk-…" + key[-4:]
    env = Path(environ["TIERKEEPER_CONFIG_ROOT"]) / customer.tenant_id / ".env"
    assert env.read_text() == f"TIERKEEPER_BYOK_OPENAI_KEY='{key}'\n"
    summary = await services.configs.regenerate()
    assert summary.failed == ()


@pytest.mark.parametrize("path", ["/api/v1/tenant", "/api/v1/auth/signup"])
async def test_a_time_zone_naming_a_directory_is_a_field_error(
    client: AsyncTestClient[Any], customer: Customer, path: str
) -> None:
    body = {"timezone": "Europe"}
    if path.endswith("signup"):
        response = await client.post(
            path, json={**body, "email": "europe@example.com", "password": "long enough pw"}
        )
    else:
        response = await client.patch(path, json=body, headers=customer.headers)
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "detail": "timezone 'Europe' is not an IANA time zone name",
        "field": "timezone",
    }


@pytest.mark.parametrize("path", ["/api/v1/tenant", "/api/v1/auth/signup"])
async def test_json_nested_a_thousand_deep_is_a_field_error(
    client: AsyncTestClient[Any], customer: Customer, path: str
) -> None:
    content = '{"timezone": ' + "[" * 1000 + "]" * 1000 + "}"
    headers = {**customer.headers, "Content-Type": "application/json"}
    if path.endswith("signup"):
        response = await client.post(
            path, content=content, headers={"Content-Type": "application/json"}
        )
    else:
        response = await client.patch(path, content=content, headers=headers)
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "detail": "the request body is nested too deeply",
        "field": "body",
    }


async def test_a_non_ascii_key_at_test_connection_is_a_field_error(
    client: AsyncTestClient[Any], customer: Customer
) -> None:
    response = await client.post(
        "/api/v1/settings/llm-config/test",
        json={"provider": "openai", "api_key": key_for("openai") + "é"},
        headers=customer.headers,
    )
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "detail": "api_key must contain only ASCII characters",
        "field": "api_key",
    }


async def test_a_read_only_database_answers_503_and_readyz_says_so(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    with postgres.fresh_database("read_only") as url:
        upgrade(url)
        settings = Settings.from_environ({**environ, "TIERKEEPER_DATABASE_URL": url})

        async def build(settings: Settings) -> Services:
            return await build_services(
                settings, probe_timeout_s=PROBE_TIMEOUT_S, password_hasher=TEST_PASSWORD_HASHER
            )

        writable = await build(settings)  # on this loop: set up the tenant and a token
        try:
            signed = await writable.accounts.signup("ro@example.com", Secret("long enough pw"))
            tenant_id = signed.tenant.id
            await make_active(writable, tenant_id)
            token = (await writable.accounts.create_service_token("ro")).reveal()
        finally:
            await writable.close()
        engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        engine.dispose()
        try:
            async with AsyncTestClient(create_app(settings=settings, build=build)) as client:
                refused = await admit(
                    client, {"Authorization": f"Bearer {token}"}, tenant_id, "ro-1"
                )
                assert refused.status_code == 503
                assert refused.json()["code"] == "database_unavailable"
                assert refused.headers["Retry-After"]
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["code"] == "database_unavailable"
        finally:
            engine = sa.create_engine(
                sync_url(url),
                poolclass=sa.NullPool,
                connect_args={"options": "-c default_transaction_read_only=off"},
            )
            with engine.begin() as conn:
                conn.execute(
                    sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
                )
            engine.dispose()
