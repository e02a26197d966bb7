"""``SqlVirtualKeyRepository``: tenants' virtual keys, by tenant and by hash (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import tables as t
from adapters.sql.connections import upsert
from adapters.sql.unavailable import reports_unavailable
from domain.byok import Ciphertext
from domain.errors import Conflict
from domain.ids import TenantId
from domain.virtual_keys import StoredVirtualKey


def _key(row: Mapping[Any, Any]) -> StoredVirtualKey:
    return StoredVirtualKey(
        tenant_id=TenantId(row["tenant_id"]),
        key_hash=row["key_hash"],
        ciphertext=Ciphertext(
            row["ciphertext_store"], int(row["ciphertext_key_version"]), row["ciphertext_token"]
        ),
        created_at=row["created_at"].astimezone(UTC),
    )


@reports_unavailable
@attrs.frozen
class SqlVirtualKeyRepository:
    """One row per tenant; replacing it (upsert on the tenant) retires the previous key."""

    engine: AsyncEngine

    async def get(self, tenant_id: TenantId) -> StoredVirtualKey | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    t.virtual_keys.select().where(t.virtual_keys.c.tenant_id == tenant_id)
                )
            ).first()
        return _key(row._mapping) if row is not None else None

    async def put(self, key: StoredVirtualKey) -> None:
        values = {
            "tenant_id": key.tenant_id,
            "key_hash": key.key_hash,
            "ciphertext_store": key.ciphertext.store,
            "ciphertext_key_version": key.ciphertext.key_version,
            "ciphertext_token": key.ciphertext.token,
            "created_at": key.created_at,
        }
        statement = upsert(self.engine, t.virtual_keys).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.virtual_keys.c.tenant_id],
            set_={k: v for k, v in values.items() if k != "tenant_id"},
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(statement)
        except sa.exc.IntegrityError:
            raise Conflict("this virtual key is already in use") from None

    async def tenant_for(self, key_hash: str) -> TenantId | None:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                sa.select(t.virtual_keys.c.tenant_id).where(t.virtual_keys.c.key_hash == key_hash)
            )
        return TenantId(value) if value is not None else None
