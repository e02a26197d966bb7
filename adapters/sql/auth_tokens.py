"""``SqlAuthTokenRepository``: bearer tokens by hash on SQLAlchemy Core; the plaintext token
is never stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections
from adapters.sql.tenants import utc
from adapters.sql.unavailable import reports_unavailable
from domain.errors import Conflict
from domain.sessions import AuthToken


def auth_token_of(row: Mapping[Any, Any]) -> AuthToken:
    return AuthToken(
        row["token_hash"],
        row["kind"],
        row["subject"],
        utc(row["created_at"]),  # type: ignore[arg-type]
        utc(row["revoked_at"]),
        utc(row["last_used_at"]),
    )


@reports_unavailable
@attrs.frozen
class SqlAuthTokenRepository:
    connections: Connections

    async def add(self, token: AuthToken) -> None:
        try:
            async with self.connections.writing() as conn:
                await conn.execute(
                    t.auth_tokens.insert().values(
                        token_hash=token.token_hash,
                        kind=token.kind,
                        subject=token.subject,
                        created_at=token.created_at,
                        revoked_at=token.revoked_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict("this token already exists", code="conflict") from None

    async def find(self, token_hash: str) -> AuthToken | None:
        """The token with this hash, unless it is unknown or revoked."""
        query = t.auth_tokens.select().where(
            t.auth_tokens.c.token_hash == token_hash, t.auth_tokens.c.revoked_at.is_(None)
        )
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else auth_token_of(row)

    async def revoke(self, token_hash: str, at: datetime) -> bool:
        """Revoke once: False when the token is unknown or already revoked."""
        statement = (
            t.auth_tokens.update()
            .where(t.auth_tokens.c.token_hash == token_hash, t.auth_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        async with self.connections.writing() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def touch(self, token_hash: str, at: datetime) -> None:
        statement = (
            t.auth_tokens.update()
            .where(t.auth_tokens.c.token_hash == token_hash)
            .values(last_used_at=at)
        )
        async with self.connections.writing() as conn:
            await conn.execute(statement)

    async def live_for_subject(self, kind: str, subject: str | None = None) -> list[AuthToken]:
        query = t.auth_tokens.select().where(
            t.auth_tokens.c.kind == kind, t.auth_tokens.c.revoked_at.is_(None)
        )
        if subject is not None:
            query = query.where(t.auth_tokens.c.subject == subject)
        query = query.order_by(t.auth_tokens.c.created_at, t.auth_tokens.c.token_hash)
        async with self.connections.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [auth_token_of(row) for row in rows]

    async def revoke_subject(self, subject: str, at: datetime, keep: str | None = None) -> int:
        statement = t.auth_tokens.update().where(
            t.auth_tokens.c.subject == subject, t.auth_tokens.c.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(t.auth_tokens.c.token_hash != keep)
        async with self.connections.writing() as conn:
            result = await conn.execute(statement.values(revoked_at=at))
        return int(result.rowcount)
