"""The audit trail through the real app and the SQLite adapter: each listed event, made by
real requests (and by the operator's commands), is an entry with its source; no entry, and
no byte of the audit table, holds a key, a password or a token."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from domain.audit import AuditAction, AuditEntry, AuditSource
from entrypoints.bootstrap import Services
from tests.http.conftest import PASSWORD, key_for, make_active, sign_up, stripe_signature
from tests.http.test_billing import completed_checkout, post_event

LLM_CONFIG = "/api/v1/settings/llm-config/"


def table_bytes(services: Services) -> bytes:
    """Every value of every audit row, as stored."""
    database = sa.make_url(services.settings.database_url).database
    assert database is not None
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT * FROM audit_log").fetchall()
    return repr(rows).encode()


async def test_each_listed_event_is_in_the_trail_with_its_source_and_no_secret_anywhere(
    client: AsyncTestClient[Any], services: Services, service_headers: dict[str, str]
) -> None:
    customer = await sign_up(client)
    login = await client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    client.cookies.clear()  # a cookie-bearing login would need the session's CSRF token (#16)
    failed = await client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": PASSWORD + "x"}
    )
    assert failed.status_code == 401
    await make_active(services, customer.tenant_id, "byok")
    first, second = key_for("openai", "AUDIT1"), key_for("anthropic", "AUDIT2")
    for body in (
        {"provider": "openai", "api_key": first, "model_preference": "gpt-4.1"},
        {"provider": "anthropic", "api_key": second, "model_preference": "claude-sonnet-4-6"},
    ):
        saved = await client.put(LLM_CONFIG, json=body, headers=customer.headers)
        assert saved.status_code == 200, saved.text
    reported = await client.post(
        "/api/v1/gateway/key-failure",
        json={"tenant_id": customer.tenant_id, "provider": "anthropic", "status_code": 403},
        headers=service_headers,
    )
    assert reported.status_code == 200
    assert (await client.delete(LLM_CONFIG, headers=customer.headers)).status_code == 204
    payload = completed_checkout("evt_audit", customer.tenant_id, "premium")
    assert (await post_event(client, payload, stripe_signature(payload))).status_code == 200
    logout = await client.post("/api/v1/auth/logout", headers=customer.headers)
    assert logout.status_code == 204

    entries = list(reversed(await services.ports.audit.entries(customer.tenant_id)))
    seen = {(entry.action, entry.actor.source) for entry in entries}
    assert seen >= {
        (AuditAction.SIGNED_UP, AuditSource.API),
        (AuditAction.TOKEN_CREATED, AuditSource.API),
        (AuditAction.LOGIN, AuditSource.API),
        (AuditAction.LOGIN_FAILED, AuditSource.API),
        (AuditAction.TIER_CHANGED, AuditSource.CLI),
        (AuditAction.STATUS_CHANGED, AuditSource.CLI),
        (AuditAction.KEY_SAVED, AuditSource.API),
        (AuditAction.KEY_REPLACED, AuditSource.API),
        (AuditAction.KEY_INVALIDATED, AuditSource.GATEWAY),
        (AuditAction.KEY_REMOVED, AuditSource.API),
        (AuditAction.TIER_CHANGED, AuditSource.WEBHOOK),
        (AuditAction.TOKEN_REVOKED, AuditSource.API),
    }
    removed = next(e for e in entries if e.action is AuditAction.KEY_REMOVED)
    assert removed.actor.name == customer.user_id
    webhook = next(e for e in entries if e.actor.source is AuditSource.WEBHOOK)
    assert webhook.detail == "tier byok -> premium"

    secrets = [first, second, PASSWORD, customer.token, login.json()["token"]]
    stored = table_bytes(services)
    for entry in entries:
        text = entry_text(entry)
        for secret in secrets:
            assert secret not in text
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret[-10:].encode() not in stored


def entry_text(entry: AuditEntry) -> str:
    return " ".join([repr(entry), entry.detail, entry.actor.name, str(entry.tenant_id)])
