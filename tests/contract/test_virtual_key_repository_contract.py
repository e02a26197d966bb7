"""Contract of the ``VirtualKeyRepository`` port: the fake, SQLite and PostgreSQL keep one
key per tenant, find a tenant by its key's hash only while that key is current, and refuse a
hash another tenant holds."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.sql.database import open_database
from domain.byok import Ciphertext
from domain.errors import Conflict
from domain.ids import TenantId, TierId, UserId
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.virtual_keys import StoredVirtualKey
from tests.contract.conftest import BACKENDS
from tests.fakes import InMemoryVirtualKeyRepository
from tests.support import postgres

pytestmark = pytest.mark.contract

T0 = datetime(2026, 12, 2, 6, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def keys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryVirtualKeyRepository()
        return
    if request.param == "sqlite":
        path = tmp_path / "tierkeeper.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate_all(url)
    db = await open_database(url, pool_size=2)
    try:
        for n in (1, 2):
            tenant = Tenant(
                id=TenantId(f"t{n}"),
                tier=TierId("starter"),
                status=SubscriptionStatus.ACTIVE,
                timezone="UTC",
                billing_anchor_day=1,
                created_at=T0,
            )
            user = User(UserId(f"u{n}"), f"u{n}@example.com", "hash", tenant.id, T0)
            await db.tenants.add(tenant, user)
        yield db.virtual_keys
    finally:
        await db.close()


def a_key(tenant: str, digest: str, version: int = 1) -> StoredVirtualKey:
    return StoredVirtualKey(
        tenant_id=TenantId(tenant),
        key_hash=digest,
        ciphertext=Ciphertext("fernet", version, f"token-{digest}"),
        created_at=T0,
    )


async def test_a_stored_key_is_found_by_tenant_and_by_hash(keys: Any) -> None:
    assert await keys.get(TenantId("t1")) is None
    assert await keys.tenant_for("a" * 64) is None
    await keys.put(a_key("t1", "a" * 64))
    assert await keys.get(TenantId("t1")) == a_key("t1", "a" * 64)
    assert await keys.tenant_for("a" * 64) == "t1"


async def test_a_new_key_replaces_the_old_one_which_stops_working(keys: Any) -> None:
    await keys.put(a_key("t1", "a" * 64))
    await keys.put(a_key("t1", "b" * 64, version=2))
    assert await keys.tenant_for("a" * 64) is None
    assert await keys.tenant_for("b" * 64) == "t1"
    assert (await keys.get(TenantId("t1"))).ciphertext.key_version == 2


async def test_a_hash_held_by_another_tenant_is_refused(keys: Any) -> None:
    await keys.put(a_key("t1", "a" * 64))
    with pytest.raises(Conflict):
        await keys.put(a_key("t2", "a" * 64))
    assert await keys.tenant_for("a" * 64) == "t1"
    assert await keys.get(TenantId("t2")) is None
