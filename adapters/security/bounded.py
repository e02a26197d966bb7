"""``BoundedPasswordHasher``: at most a few slow password hashes at a time.

Argon2 takes tens of MiB per hash; run unbounded, 64 logins at once take 64 times that. This
wrapper lets ``max_running`` hashes run, lets at most ``max_waiting`` more wait for a turn,
and sheds everything beyond that at once with ``Overloaded`` (HTTP 503 with Retry-After): the
memory the hashes can take is ``max_running`` × the hash's memory cost, whatever the load.
"""

from __future__ import annotations

import asyncio

import attrs

from domain.errors import Overloaded
from domain.ports import PasswordHasher
from domain.secrets import Secret

DEFAULT_MAX_RUNNING = 2
DEFAULT_MAX_WAITING = 16
RETRY_AFTER_S = 1


@attrs.define
class BoundedPasswordHasher:
    inner: PasswordHasher
    max_running: int = DEFAULT_MAX_RUNNING
    max_waiting: int = DEFAULT_MAX_WAITING
    _admitted: int = attrs.field(default=0, init=False)
    _turns: asyncio.Semaphore | None = attrs.field(default=None, init=False)

    def __repr__(self) -> str:
        return f"BoundedPasswordHasher(max_running={self.max_running})"

    def _semaphore(self) -> asyncio.Semaphore:
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.max_running)
        return self._turns

    async def hash(self, password: Secret) -> str:
        self._admit()
        try:
            async with self._semaphore():
                return await self.inner.hash(password)
        finally:
            self._admitted -= 1

    async def verify(self, password_hash: str, password: Secret) -> bool:
        self._admit()
        try:
            async with self._semaphore():
                return await self.inner.verify(password_hash, password)
        finally:
            self._admitted -= 1

    def _admit(self) -> None:
        """Refuse at once when the running and waiting places are all taken."""
        if self._admitted >= self.max_running + self.max_waiting:
            raise Overloaded(
                "too many logins at once; try again in a moment", retry_after_s=RETRY_AFTER_S
            )
        self._admitted += 1
