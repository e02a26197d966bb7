"""``SqlCredentialRepository``: one stored LLM credential per tenant on SQLAlchemy Core; the
ciphertext and its store and key version are three columns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from adapters.sql import tables as t
from adapters.sql.connections import Connections, upsert
from adapters.sql.tenants import utc
from adapters.sql.unavailable import reports_unavailable
from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.ids import ProviderId, TenantId, UserId


def credential_row(credential: StoredCredential) -> dict[str, Any]:
    return {
        "tenant_id": credential.tenant_id,
        "user_id": credential.user_id,
        "provider": credential.provider,
        "model_preference": credential.model_preference,
        "ciphertext_store": credential.ciphertext.store,
        "ciphertext_key_version": credential.ciphertext.key_version,
        "ciphertext_token": credential.ciphertext.token,
        "key_mask": credential.key_mask,
        "status": credential.status.value,
        "allow_platform_fallback": credential.allow_platform_fallback,
        "created_at": credential.created_at,
        "updated_at": credential.updated_at,
        "last_verified_at": credential.last_verified_at,
        "last_error": credential.last_error,
    }


def credential_of(row: Mapping[Any, Any]) -> StoredCredential:
    return StoredCredential(
        tenant_id=TenantId(row["tenant_id"]),
        user_id=UserId(row["user_id"]),
        provider=ProviderId(row["provider"]),
        model_preference=row["model_preference"],
        ciphertext=Ciphertext(
            row["ciphertext_store"], row["ciphertext_key_version"], row["ciphertext_token"]
        ),
        key_mask=row["key_mask"],
        status=KeyStatus(row["status"]),
        allow_platform_fallback=bool(row["allow_platform_fallback"]),
        created_at=utc(row["created_at"]),  # type: ignore[arg-type]
        updated_at=utc(row["updated_at"]),  # type: ignore[arg-type]
        last_verified_at=utc(row["last_verified_at"]),
        last_error=row["last_error"],
    )


@reports_unavailable
@attrs.frozen
class SqlCredentialRepository:
    connections: Connections

    async def get(self, tenant_id: TenantId) -> StoredCredential | None:
        query = t.credentials.select().where(t.credentials.c.tenant_id == tenant_id)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return credential_of(row) if row else None

    async def put(self, credential: StoredCredential) -> None:
        values = credential_row(credential)
        async with self.connections.writing() as conn:
            statement = upsert(conn, t.credentials).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=[t.credentials.c.tenant_id],
                set_={k: v for k, v in values.items() if k != "tenant_id"},
            )
            await conn.execute(statement)

    async def delete(self, tenant_id: TenantId) -> bool:
        async with self.connections.writing() as conn:
            result = await conn.execute(
                t.credentials.delete().where(t.credentials.c.tenant_id == tenant_id)
            )
        return result.rowcount > 0

    async def replace_ciphertext(
        self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext
    ) -> bool:
        """Compare-and-swap in one ``UPDATE … WHERE`` on all three ciphertext columns."""
        c = t.credentials.c
        statement = (
            t.credentials.update()
            .where(
                c.tenant_id == tenant_id,
                c.ciphertext_store == expected.store,
                c.ciphertext_key_version == expected.key_version,
                c.ciphertext_token == expected.token,
            )
            .values(
                ciphertext_store=new.store,
                ciphertext_key_version=new.key_version,
                ciphertext_token=new.token,
            )
        )
        async with self.connections.writing() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def iter_all(self, batch_size: int = 500) -> AsyncIterator[StoredCredential]:
        after: str | None = None
        while True:
            query = t.credentials.select().order_by(t.credentials.c.tenant_id).limit(batch_size)
            if after is not None:
                query = query.where(t.credentials.c.tenant_id > after)
            async with self.connections.reading() as conn:
                rows = (await conn.execute(query)).mappings().all()
            for row in rows:
                yield credential_of(row)
            if len(rows) < batch_size:
                return
            after = rows[-1]["tenant_id"]
