"""Baselines for the admission benchmark: the cheapest Litestar endpoints that do what the
product's endpoints must at least do, served by the same uvicorn setup on the same database.

- ``GET /bare``: a constant small JSON list (the floor under ``GET /api/v1/tiers``).
- ``POST /bare``: parse a JSON body like the gateway's admit body, answer a small JSON object.
- ``POST /update``: the same, plus one conditional ``UPDATE … RETURNING`` on a pooled asyncpg
  connection (the floor under ``POST /api/v1/gateway/admit`` and ``/settle``: a correct
  admission needs at least one atomic conditional write).

Run with ``uvicorn --factory --app-dir bench baseline_app:create_app``; the database URL comes
from ``BENCH_BASELINE_DATABASE_URL`` (a libpq URL). Not part of the product.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from litestar import Litestar, get, post
from litestar.datastructures import State

from adapters.sql.database import keep_session_state

ENV_URL = "BENCH_BASELINE_DATABASE_URL"
POOL_SIZE = 10
"""The same bound and release hook as the product's asyncpg pool (``open_database``)."""

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_counters (
    id text PRIMARY KEY,
    n integer NOT NULL DEFAULT 0,
    cap integer NOT NULL
)
"""
UPDATE_SQL = "UPDATE bench_counters SET n = n + 1 WHERE id = $1 AND n < cap RETURNING n"


class AdmitLike(msgspec.Struct):
    tenant_id: str
    message_id: str
    max_tokens: int | None = None


class Answer(msgspec.Struct):
    ok: bool
    n: int | None = None


class Item(msgspec.Struct):
    id: str
    name: str
    amount_cents: int


ITEMS = [Item("a", "A", 700), Item("b", "B", 2500), Item("c", "C", 600)]


def prepare_table(url: str, ids: list[str], cap: int) -> None:
    """The counters table with one row per id, all at zero (run before the server starts)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
        conn.execute("TRUNCATE bench_counters")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_counters (id, n, cap) VALUES (%s, 0, %s)",
                [(i, cap) for i in ids],
            )


@get("/bare")
async def bare_get() -> list[Item]:
    return ITEMS


@post("/bare", status_code=200)
async def bare_post(data: AdmitLike) -> Answer:
    return Answer(ok=bool(data.tenant_id))


@post("/update", status_code=200)
async def update_post(data: AdmitLike, state: State) -> Answer:
    n = await state.pool.fetchval(UPDATE_SQL, data.tenant_id)
    return Answer(ok=n is not None, n=n)


def create_app() -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        url = os.environ.get(ENV_URL)
        app.state.pool = (
            await asyncpg.create_pool(url, min_size=1, max_size=POOL_SIZE, reset=keep_session_state)
            if url
            else None
        )
        try:
            yield
        finally:
            if app.state.pool is not None:
                await app.state.pool.close()

    return Litestar(
        route_handlers=[bare_get, bare_post, update_post], lifespan=[lifespan], debug=False
    )
