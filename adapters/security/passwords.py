"""Argon2id password hashing behind the ``PasswordHasher`` port.

Hashing is deliberately slow, so it runs in a worker thread and never blocks the event loop.
"""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from domain.secrets import Secret


class Argon2PasswordHasher:
    """argon2-cffi's defaults (RFC 9106 low-memory profile) unless told otherwise."""

    def __init__(
        self,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
    ) -> None:
        defaults = _Argon2()
        self._hasher = _Argon2(
            time_cost=time_cost or defaults.time_cost,
            memory_cost=memory_cost or defaults.memory_cost,
            parallelism=parallelism or defaults.parallelism,
        )

    def __repr__(self) -> str:
        return "Argon2PasswordHasher()"

    async def hash(self, password: Secret) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password.reveal())

    async def verify(self, password_hash: str, password: Secret) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password.reveal())
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(check)
