"""The accounts' storage: failed-login counts (``SqlAttemptLog``) and what changes about a
user after signup, with the mailed single-use codes (``SqlAccountRepository``).

Both live in the database so every API process sees the same counts and codes, and a code is
used up by one conditional ``UPDATE``: two requests racing with one code cannot both win.
"""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa

from adapters.sql import tables as t
from adapters.sql.connections import Connections, upsert
from adapters.sql.unavailable import reports_unavailable
from domain.accounts import OneTimePurpose, OneTimeToken
from domain.errors import Conflict
from domain.ids import UserId
from domain.notifications import ACCOUNT_MAIL
from domain.throttle import Attempts


@reports_unavailable
@attrs.frozen
class SqlAttemptLog:
    connections: Connections

    async def get(self, key: str) -> Attempts:
        query = t.login_attempts.select().where(t.login_attempts.c.key == key)
        async with self.connections.reading() as conn:
            row = (await conn.execute(query)).mappings().first()
        return Attempts() if row is None else Attempts(row["failures"], row["last_failure_at"])

    async def record_failure(self, key: str, at: datetime) -> Attempts:
        """One ``INSERT … ON CONFLICT DO UPDATE``: concurrent failures all count."""
        async with self.connections.writing() as conn:
            insert = upsert(conn, t.login_attempts).values(key=key, failures=1, last_failure_at=at)
            statement = insert.on_conflict_do_update(
                index_elements=[t.login_attempts.c.key],
                set_={"failures": t.login_attempts.c.failures + 1, "last_failure_at": at},
            ).returning(t.login_attempts.c.failures, t.login_attempts.c.last_failure_at)
            row = (await conn.execute(statement)).mappings().one()
        return Attempts(row["failures"], row["last_failure_at"])

    async def clear(self, key: str) -> None:
        async with self.connections.writing() as conn:
            await conn.execute(t.login_attempts.delete().where(t.login_attempts.c.key == key))

    async def forget_before(self, at: datetime) -> int:
        statement = t.login_attempts.delete().where(t.login_attempts.c.last_failure_at < at)
        async with self.connections.writing() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount)


def _one_time(row: sa.RowMapping) -> OneTimeToken:
    return OneTimeToken(
        token_hash=row["token_hash"],
        purpose=OneTimePurpose(row["purpose"]),
        user_id=UserId(row["user_id"]),
        email=row["email"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
    )


@reports_unavailable
@attrs.frozen
class SqlAccountRepository:
    connections: Connections

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        statement = t.users.update().where(t.users.c.id == user_id)
        async with self.connections.writing() as conn:
            await conn.execute(statement.values(password_hash=password_hash))

    async def set_email(self, user_id: UserId, email: str) -> None:
        """A new address is not verified yet; a taken one is a ``Conflict``."""
        statement = t.users.update().where(t.users.c.id == user_id)
        try:
            async with self.connections.writing() as conn:
                await conn.execute(statement.values(email=email, email_verified_at=None))
        except sa.exc.IntegrityError:
            raise Conflict("this email address is taken", code="conflict") from None

    async def mark_email_verified(self, user_id: UserId, at: datetime) -> None:
        statement = t.users.update().where(t.users.c.id == user_id)
        async with self.connections.writing() as conn:
            await conn.execute(statement.values(email_verified_at=at))

    async def email_verified_at(self, user_id: UserId) -> datetime | None:
        query = sa.select(t.users.c.email_verified_at).where(t.users.c.id == user_id)
        async with self.connections.reading() as conn:
            value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
        return value

    async def add_one_time_token(self, token: OneTimeToken) -> None:
        async with self.connections.writing() as conn:
            await conn.execute(
                t.one_time_tokens.insert().values(
                    token_hash=token.token_hash,
                    purpose=token.purpose.value,
                    user_id=token.user_id,
                    email=token.email,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    used_at=token.used_at,
                )
            )

    async def consume_one_time_token(
        self, token_hash: str, purpose: OneTimePurpose, at: datetime
    ) -> OneTimeToken | None:
        c = t.one_time_tokens.c
        statement = (
            t.one_time_tokens.update()
            .where(
                c.token_hash == token_hash,
                c.purpose == purpose.value,
                c.used_at.is_(None),
                c.expires_at > at,
            )
            .values(used_at=at)
            .returning(*t.one_time_tokens.c)
        )
        async with self.connections.writing() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return None if row is None else _one_time(row)

    async def delete_user(self, user_id: UserId) -> None:
        """The user row goes with its email, and so do its tokens and the account mail
        queued or kept for that user in the notifications outbox (with its deliveries): the
        mail about the user, and the tenant's mail written for no user (an email change's
        new address)."""
        async with self.connections.writing() as conn:
            tenant_id = (
                await conn.execute(sa.select(t.users.c.tenant_id).where(t.users.c.id == user_id))
            ).scalar_one_or_none()
            if tenant_id is not None:
                n = t.notifications
                mail = sa.select(n.c.id).where(
                    n.c.tenant_id == tenant_id,
                    n.c.kind.in_([kind.value for kind in ACCOUNT_MAIL]),
                    sa.or_(n.c.user_id == user_id, n.c.user_id.is_(None)),
                )
                ids = list((await conn.execute(mail)).scalars())
                if ids:
                    deliveries = t.notification_deliveries
                    await conn.execute(
                        deliveries.delete().where(deliveries.c.notification_id.in_(ids))
                    )
                    await conn.execute(n.delete().where(n.c.id.in_(ids)))
            await conn.execute(
                t.one_time_tokens.delete().where(t.one_time_tokens.c.user_id == user_id)
            )
            await conn.execute(t.auth_tokens.delete().where(t.auth_tokens.c.subject == user_id))
            await conn.execute(t.users.delete().where(t.users.c.id == user_id))
