"""Group commit for the PostgreSQL ledger: ledger operations queue, and one flusher sends
everything queued as one statement (``tk_ledger_batch``: one round trip, one transaction,
one commit). While a batch is in flight, new operations queue for the next one.

- An operation starts a batch at once unless one is in flight; then it waits for the next
  one, with everything else that arrived meanwhile. Nothing waits for company: at one
  request at a time each operation is its own statement, as it would be without batches
  (measured: holding a settlement for the next call's reservation put the settlement's
  work on that call's path, about 1.2 ms more per whole answer at one connection).
- A batch of one operation is sent as that operation's own statement (no jsonb to encode
  and decode on either side).
- A batch runs in (tenant, period) order, stable (``tk_ledger_batch`` sorts it, in the
  database's collation), so each tenant's operations keep their queue order and two
  batches take period locks in one global order (no deadlock).
- A batch that fails is retried one operation at a time in queue order, each as its own
  statement, so an operation fails only its own caller, with the error it fails with alone;
  a lost database fails every caller at once, as it would each statement.
- A queued operation always runs, even when its caller stops waiting: it completes or,
  with its batch, never ran. ``close()`` waits until the queue has run.
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

MAX_BATCH = 256
"""Operations in one statement at most; a longer queue goes in several, one after another."""

ALONE_SQL = {
    "admit": "SELECT * FROM tk_admit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    "reserve_call": (
        "SELECT * FROM tk_reserve_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ),
    "settle": (
        "SELECT * FROM tk_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
        " $15, $16)"
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
    _flusher: asyncio.Task[None] | None = attrs.field(default=None, init=False)

    async def run(self, operation: LedgerOperation) -> Mapping[str, Any]:
        """The outcome columns of ``operation``, run with the next batch."""
        answer: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(operation, answer))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await answer

    async def close(self) -> None:
        """Wait until everything queued has run."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                await self._send(batch)
        finally:
            self._flusher = None

    async def _send(self, batch: list[_Queued]) -> None:
        if len(batch) == 1:
            await self._send_alone(batch[0])
            return
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
        except asyncio.CancelledError:  # the flusher itself cancelled: so is its caller
            queued.answer.cancel()
            raise
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
