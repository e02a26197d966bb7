"""Alembic owns the schema: a database at the legacy revision, with ``basic`` and ``plus``
tenants, is upgraded to the current tier ids and downgraded back (spec §1, issue #3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from adapters.sql.database import (
    current_revision,
    downgrade,
    head_revision,
    open_database,
    upgrade,
)
from adapters.sql.urls import sync_url
from domain.ids import TenantId
from tests.support import postgres

pytestmark = pytest.mark.integration

LEGACY = "0001_legacy_tenants"
CREATED = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield str(request.getfixturevalue("sqlite_url"))
    else:
        with postgres.fresh_database(f"migrations_{request.node.name[-12:]}") as url:
            yield url


def run(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = sa.create_engine(sync_url(url), poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def add_tenant(url: str, tenant_id: str, tier: str) -> None:
    run(
        url,
        "INSERT INTO tenants (id, tier, status, timezone, billing_anchor_day, created_at)"
        " VALUES (:id, :tier, 'active', 'Europe/Berlin', 3, :created)",
        id=tenant_id,
        tier=tier,
        created=CREATED,
    )
    run(
        url,
        "INSERT INTO users (id, email, password_hash, tenant_id, created_at)"
        " VALUES (:id, :email, 'hash', :tenant, :created)",
        id=f"u-{tenant_id}",
        email=f"{tenant_id}@example.com",
        tenant=tenant_id,
        created=CREATED,
    )


def tiers(url: str) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in run(url, "SELECT id, tier FROM tenants")}


def rejects_tier(url: str, tier: str) -> bool:
    try:
        add_tenant(url, f"probe-{tier}", tier)
    except sa.exc.IntegrityError:
        return True
    run(url, "DELETE FROM users WHERE tenant_id = :id", id=f"probe-{tier}")
    run(url, "DELETE FROM tenants WHERE id = :id", id=f"probe-{tier}")
    return False


@pytest.fixture
def legacy_url(empty_url: str) -> str:
    """The legacy schema with one ``basic`` and one ``plus`` tenant."""
    upgrade(empty_url, LEGACY)
    add_tenant(empty_url, "t-basic", "basic")
    add_tenant(empty_url, "t-plus", "plus")
    return empty_url


async def test_upgrade_renames_legacy_tiers_and_downgrade_restores_them(legacy_url: str) -> None:
    assert current_revision(legacy_url) == LEGACY
    assert rejects_tier(legacy_url, "starter")

    upgrade(legacy_url)
    assert current_revision(legacy_url) == head_revision()
    assert tiers(legacy_url) == {"t-basic": "starter", "t-plus": "premium"}
    assert rejects_tier(legacy_url, "basic")
    assert rejects_tier(legacy_url, "plus")
    assert not rejects_tier(legacy_url, "byok")
    db = await open_database(legacy_url, pool_size=1)
    try:
        tenant = await db.tenants.get(TenantId("t-plus"))
        user = await db.tenants.user_by_email("t-basic@example.com")
    finally:
        await db.close()
    assert tenant is not None and tenant.tier == "premium" and tenant.created_at == CREATED
    assert user is not None and user.tenant_id == "t-basic"

    downgrade(legacy_url, LEGACY)
    assert current_revision(legacy_url) == LEGACY
    assert tiers(legacy_url) == {"t-basic": "basic", "t-plus": "plus"}
    assert rejects_tier(legacy_url, "premium")
    assert not rejects_tier(legacy_url, "plus")
    assert len(run(legacy_url, "SELECT id FROM users")) == 2


async def test_downgrade_refuses_while_a_tenant_is_on_byok_and_changes_nothing(
    legacy_url: str,
) -> None:
    upgrade(legacy_url)
    add_tenant(legacy_url, "t-byok", "byok")
    with pytest.raises(RuntimeError, match="byok"):
        downgrade(legacy_url, LEGACY)
    assert current_revision(legacy_url) == head_revision()
    assert tiers(legacy_url) == {"t-basic": "starter", "t-plus": "premium", "t-byok": "byok"}
    assert run(legacy_url, "SELECT count(*) FROM reservations") == [(0,)]


async def test_the_whole_chain_downgrades_to_an_empty_database_and_back(empty_url: str) -> None:
    upgrade(empty_url)
    downgrade(empty_url, "base")
    assert current_revision(empty_url) is None
    upgrade(empty_url)
    assert current_revision(empty_url) == head_revision()


def test_the_db_upgrade_command_migrates_the_configured_database(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from entrypoints.cli import main

    monkeypatch.setenv("TIERKEEPER_DATABASE_URL", sqlite_url)
    assert main(["db", "upgrade"]) == 0
    assert current_revision(sqlite_url) == head_revision()
    assert f"is at revision {head_revision()}" in capsys.readouterr().out
    upgrade(sqlite_url)
    add_tenant(sqlite_url, "t-byok", "byok")
    assert main(["db", "downgrade", LEGACY]) == 1
    assert "byok" in capsys.readouterr().out
    assert current_revision(sqlite_url) == head_revision()


def add_saved_key(url: str, tenant_id: str, provider: str, model: str) -> None:
    run(
        url,
        "INSERT INTO credentials (tenant_id, user_id, provider, model_preference,"
        " ciphertext_store, ciphertext_key_version, ciphertext_token, key_mask, status,"
        " allow_platform_fallback, created_at, updated_at)"
        " VALUES (:tenant, :user, :provider, :model, 'fernet', 1, 'opaque', '…abcd',"
        " 'valid', true, :created, :created)",
        tenant=tenant_id,
        user=f"u-{tenant_id}",
        provider=provider,
        model=model,
        created=CREATED,
    )


async def test_saved_groq_keys_move_off_the_retired_models_and_nothing_else_changes(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0017_ledger_batches")
    saved = {
        "t-llama": ("groq", "llama-3.3-70b-versatile"),
        "t-kimi": ("groq", "moonshotai/kimi-k2-instruct"),
        "t-gpt-oss": ("groq", "openai/gpt-oss-20b"),
        "t-anthropic": ("anthropic", "claude-sonnet-4-5"),
    }
    for tenant_id, (provider, model) in saved.items():
        add_tenant(empty_url, tenant_id, "byok")
        add_saved_key(empty_url, tenant_id, provider, model)

    upgrade(empty_url)

    rows = run(empty_url, "SELECT tenant_id, provider, model_preference FROM credentials")
    assert {str(r[0]): (str(r[1]), str(r[2])) for r in rows} == {
        "t-llama": ("groq", "openai/gpt-oss-120b"),
        "t-kimi": ("groq", "openai/gpt-oss-120b"),
        "t-gpt-oss": ("groq", "openai/gpt-oss-20b"),
        "t-anthropic": ("anthropic", "claude-sonnet-4-5"),
    }
