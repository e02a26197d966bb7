"""Group commit for the PostgreSQL ledger: ledger operations queue, and one flusher sends
everything queued as one statement (``tk_ledger_batch``: one round trip, one transaction,
one commit). While a batch is in flight, new operations queue for the next one.

- An urgent operation (an admission, a call's reservation: callers wait on them) starts a
  batch at once unless one is in flight; a settlement waits up to ``SETTLE_COMPANY_WAIT``
  for company (a late settlement is conservative: its reservation counts in full).
- A batch runs in (tenant, period) order, stable (``tk_ledger_batch`` sorts it, in the
  database's collation), so each tenant's operations keep their queue order and two
  batches take period locks in one global order (no deadlock).
- A batch that fails is retried one operation at a time in queue order, each as its own
  statement, so an operation fails only its own caller, with the error it fails with alone;
  a lost database fails every caller at once, as it would each statement.
- A queued operation always runs, even when its caller stops waiting: it completes or,
  with its batch, never ran. ``close()`` flushes the queue; a full queue flushes at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import asyncpg
import attrs

from adapters.sql.unavailable import is_disconnect

SETTLE_COMPANY_WAIT = 0.003
"""Seconds a settlement waits for a batch to join: the next call's reservation usually
arrives within it (one client's settle then shares the reservation's commit, and no longer
holds the period lock the reservation waits on), and it is short against the reservation's
expiry, so a settlement is never noticeably late."""

MAX_BATCH = 256
"""Operations in one statement at most; a queue this long flushes at once."""

ALONE_SQL = {
    "admit": "SELECT * FROM tk_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    "reserve_call": (
        "SELECT * FROM tk_reserve_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ),
    "settle": (
        "SELECT * FROM tk_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ),
}
"""Each kind's statement alone: a batch's retry, one operation at a time."""

BATCH_SQL = "SELECT o_index, o_result FROM tk_ledger_batch($1::jsonb)"


@attrs.frozen
class LedgerOperation:
    """One call of ``tk_<kind>`` with ``arguments`` in its parameters' order."""

    kind: str
    tenant: str
    period: date
    arguments: tuple[Any, ...]


@attrs.frozen
class _Queued:
    operation: LedgerOperation
    answer: asyncio.Future[Mapping[str, Any]]


@attrs.define
class LedgerBatches:
    """The queue of one ledger's pending operations and its single flusher."""

    pool: asyncpg.Pool
    _queue: list[_Queued] = attrs.field(factory=list, init=False)
    _urgent: bool = attrs.field(default=False, init=False)
    _flusher: asyncio.Task[None] | None = attrs.field(default=None, init=False)
    _timer: asyncio.TimerHandle | None = attrs.field(default=None, init=False)

    async def run(self, operation: LedgerOperation, *, urgent: bool) -> Mapping[str, Any]:
        """The outcome columns of ``operation``, run with the next batch."""
        answer: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(operation, answer))
        self._urgent = self._urgent or urgent or len(self._queue) >= MAX_BATCH
        self._schedule()
        return await answer

    async def close(self) -> None:
        """Run everything queued, now."""
        while self._queue or self._flusher is not None:
            self._urgent = True
            self._schedule()
            if self._flusher is not None:
                await asyncio.shield(self._flusher)

    def _schedule(self) -> None:
        if self._flusher is not None or not self._queue:
            return
        if self._urgent:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flusher = asyncio.create_task(self._flush())
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                SETTLE_COMPANY_WAIT, self._company_waited
            )

    def _company_waited(self) -> None:
        self._timer = None
        self._urgent = True
        self._schedule()

    async def _flush(self) -> None:
        try:
            while self._urgent and self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                self._urgent = len(self._queue) >= MAX_BATCH or any(
                    queued.operation.kind != "settle" for queued in self._queue
                )
                await self._send(batch)
        finally:
            self._flusher = None
            self._schedule()

    async def _send(self, batch: list[_Queued]) -> None:
        try:
            rows = await self.pool.fetch(BATCH_SQL, _payload(batch))
            answers = [(batch[row["o_index"]], json.loads(row["o_result"])) for row in rows]
        except asyncio.CancelledError:  # the flusher itself cancelled: its callers are too
            for queued in batch:
                queued.answer.cancel()
            raise
        except Exception as error:
            if is_disconnect(error):
                for queued in batch:
                    _fail(queued.answer, error)
                return
            for queued in batch:  # in queue order: a tenant's operations keep their order
                await self._send_alone(queued)
            return
        for queued, outcome in answers:
            _answer(queued.answer, outcome)

    async def _send_alone(self, queued: _Queued) -> None:
        operation = queued.operation
        try:
            row = await self.pool.fetchrow(ALONE_SQL[operation.kind], *operation.arguments)
        except Exception as error:
            _fail(queued.answer, error)
            return
        _answer(queued.answer, row)


def _answer(answer: asyncio.Future[Mapping[str, Any]], row: Mapping[str, Any]) -> None:
    if not answer.done():  # a caller that stopped waiting: its operation ran all the same
        answer.set_result(row)


def _fail(answer: asyncio.Future[Mapping[str, Any]], error: Exception) -> None:
    if not answer.done():
        answer.set_exception(error)


def _payload(batch: Sequence[_Queued]) -> str:
    """The batch as ``tk_ledger_batch`` reads it: dates, times and decimals as their text."""
    return json.dumps(
        [
            {
                "k": queued.operation.kind,
                "t": queued.operation.tenant,
                "p": queued.operation.period,
                "a": queued.operation.arguments,
            }
            for queued in batch
        ],
        default=str,
    )
