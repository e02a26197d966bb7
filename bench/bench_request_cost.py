"""CPU per request inside the app process: the product's endpoints and the Litestar baselines
called as ASGI applications directly (no HTTP server, no socket), one request at a time, on
PostgreSQL.

    .venv/bin/python bench/bench_request_cost.py [--requests 3000] [--repeat 5] [--profile N]
        [--no-single-flight]

Where ``bench_admission.py`` measures throughput with every party sharing the machine, this
measures what one request costs the app process itself (``time.process_time``), which is
what bounds one worker's throughput; the best of ``--repeat`` runs is printed. PostgreSQL
runs in its own process, so its share is not counted. The hot-tenant admit sends every
request to one tenant, as ``bench_admission``'s does: past its day's cap, refusals.
``--profile N`` prints cProfile's top N functions of the two admit runs.

Counts that do not depend on the machine's load are printed beside the times: database
round trips per request (statements with parameters, and BEGIN/COMMIT/ROLLBACK, counted at
asyncpg's Python layer) and, from cProfile when profiling, function calls per request. The
last scenario sends 64 first admits of a fresh tenant at once (what the HTTP benchmark's
hot run starts with) and counts the SQLAlchemy pool's connections opened and the most
checked out at once. ``--no-single-flight`` lets each of them read the tenant itself (the
code before the tenant reads were shared), for an A/B in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.baseline_app import prepare_table  # noqa: E402
from bench.bench_admission import (  # noqa: E402
    HOT_TENANT,
    bench_database,
    bench_environ,
    hot_tenant_ids,
    libpq,
    seed,
    tenant_ids,
)

BURST = 64
"""Concurrent first admits of one fresh tenant, as bench_admission's 64 connections send."""
BURST_ROUNDS = 3


class RoundTrips:
    """Database round trips the app makes, counted by wrapping asyncpg's Python methods:
    a statement with parameters (the ledger's functions, SQLAlchemy's reads) and a
    transaction's BEGIN, COMMIT or ROLLBACK. Also the SQLAlchemy pool's connections opened
    and the most checked out at once."""

    def __init__(self) -> None:
        import asyncpg.connection
        import asyncpg.prepared_stmt
        import asyncpg.transaction
        import sqlalchemy as sa

        self.statements = self.transactions = self.connects = 0
        self.checked_out = self.most_checked_out = 0
        wraps = [
            (asyncpg.connection.Connection, "_do_execute", "statements"),
            (asyncpg.prepared_stmt.PreparedStatement, "_PreparedStatement__do_execute",
             "statements"),
            (asyncpg.transaction.Transaction, "start", "transactions"),
            (asyncpg.transaction.Transaction, "_Transaction__commit", "transactions"),
            (asyncpg.transaction.Transaction, "_Transaction__rollback", "transactions"),
        ]  # fmt: skip
        for owner, name, counter in wraps:
            setattr(owner, name, self._counting(getattr(owner, name), counter))
        sa.event.listen(sa.pool.Pool, "connect", self._on_connect)
        sa.event.listen(sa.pool.Pool, "checkout", self._on_checkout)
        sa.event.listen(sa.pool.Pool, "checkin", self._on_checkin)

    def _counting(self, method: Any, counter: str) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            setattr(self, counter, getattr(self, counter) + 1)
            return await method(*args, **kwargs)

        return counted

    def _on_connect(self, *_: Any) -> None:
        self.connects += 1

    def _on_checkout(self, *_: Any) -> None:
        self.checked_out += 1
        self.most_checked_out = max(self.most_checked_out, self.checked_out)

    def _on_checkin(self, *_: Any) -> None:
        self.checked_out -= 1

    def start(self) -> tuple[int, int]:
        """The counts so far, and the most checked out counted from now on."""
        self.most_checked_out = self.checked_out
        return self.statements, self.transactions


ROUND_TRIPS: RoundTrips | None = None


def read_alone() -> None:
    """The code before tenant reads were shared: each caller runs its own read."""
    from domain.use_cases.single_flight import SingleFlight

    async def run(self: object, key: object, read: Callable[[], Awaitable[Any]]) -> Any:
        return await read()

    SingleFlight.run = run  # type: ignore[assignment,method-assign]


ASGIApp = Callable[..., Awaitable[None]]
MODEL = "moonshot/kimi-k2.5"


class Driver:
    """Runs one ASGI app's lifespan and sends it requests built in memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Driver:
        async def receive() -> dict[str, str]:
            return await self._lifespan.get()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                self._started.set()
            elif message["type"] == "lifespan.startup.failed":
                raise RuntimeError(message.get("message", "startup failed"))

        await self._lifespan.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, receive, send))
        await asyncio.wait_for(self._started.wait(), 60)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        assert self._task is not None
        await self._task

    async def request(self, method: str, path: str, body: bytes, headers: list[Any]) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers, "state": {},
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await self.app(scope, receive, send)
        return status


async def cost(
    driver: Driver,
    name: str,
    make: Callable[[int], tuple[str, str, bytes]],
    token: str,
    count: int,
    repeat: int,
    profile: int,
) -> dict[str, Any]:
    """Best-of-``repeat`` microseconds of app CPU and wall time per request."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {token}".encode())]  # fmt: skip
    best_cpu = best_wall = float("inf")
    statuses: dict[int, int] = {}
    offset = 0
    calls = None
    assert ROUND_TRIPS is not None
    statements, transactions = ROUND_TRIPS.start()
    for round_ in range(repeat + 1):  # round 0 warms up
        profiler = cProfile.Profile() if profile and round_ == repeat else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for i in range(count):
            method, path, body = make(offset + i)
            status = await driver.request(method, path, body, headers)
            statuses[status] = statuses.get(status, 0) + 1
        if profiler:
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            calls = stats.total_calls / count  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(profile)
            print(f"--- cProfile, {name} (tottime) ---\n{out.getvalue()}")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        offset += count
        if round_ and not profiler:
            best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
    sent = count * (repeat + 1)
    return {
        "scenario": name,
        "cpu_us": 1e6 * best_cpu / count,
        "wall_us": 1e6 * best_wall / count,
        "statuses": statuses,
        "statements": (ROUND_TRIPS.statements - statements) / sent,
        "transactions": (ROUND_TRIPS.transactions - transactions) / sent,
        "calls": calls,
    }


async def burst(driver: Driver, token: str, tenants: list[str]) -> dict[str, Any]:
    """``BURST`` first admits of each fresh tenant at once, one tenant per round."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {token}".encode())]  # fmt: skip
    assert ROUND_TRIPS is not None
    statements, transactions = ROUND_TRIPS.start()
    connects = ROUND_TRIPS.connects
    statuses: dict[int, int] = {}
    cpu0 = time.process_time()
    for tenant in tenants:
        bodies = [json.dumps({"tenant_id": tenant, "message_id": f"b-{n}", "max_tokens": 1000})
                  for n in range(BURST)]  # fmt: skip
        answers = await asyncio.gather(
            *(driver.request("POST", "/api/v1/gateway/admit", b.encode(), headers) for b in bodies)
        )
        for status in answers:
            statuses[status] = statuses.get(status, 0) + 1
    sent = BURST * len(tenants)
    return {
        "scenario": f"{BURST} first admits of a fresh tenant at once, x{len(tenants)}",
        "cpu_us": 1e6 * (time.process_time() - cpu0) / sent,
        "wall_us": float("nan"),
        "statuses": statuses,
        "statements": (ROUND_TRIPS.statements - statements) / sent,
        "transactions": (ROUND_TRIPS.transactions - transactions) / sent,
        "calls": None,
        "pool": f"SQLAlchemy pool: {ROUND_TRIPS.connects - connects} connections opened, "
        f"at most {ROUND_TRIPS.most_checked_out} checked out at once",
    }


async def run(count: int, repeat: int, profile: int) -> list[dict[str, Any]]:
    from bench.baseline_app import create_app as create_baseline
    from entrypoints.http.app import create_app

    work = Path(tempfile.mkdtemp(prefix="tierkeeper-cost-"))
    with bench_database() as url:
        from adapters.sql.database import upgrade

        await asyncio.to_thread(upgrade, url)
        env = bench_environ(url, work)
        token, _ = await seed(env, 1000, hot=1 + BURST_ROUNDS)
        tenants = tenant_ids(1000)
        prepare_table(libpq(url), tenants, 1_000_000_000)
        os.environ.update(env)
        results = []
        admitted: list[tuple[str, str]] = []

        def admit_body(i: int) -> tuple[str, str, bytes]:
            tenant, message = tenants[i % len(tenants)], f"cost-{i}"
            admitted.append((tenant, message))
            body = {"tenant_id": tenant, "message_id": message, "max_tokens": 1000}
            return "POST", "/api/v1/gateway/admit", json.dumps(body).encode()

        def hot_admit_body(i: int) -> tuple[str, str, bytes]:
            body = {"tenant_id": HOT_TENANT, "message_id": f"hot-{i}", "max_tokens": 1000}
            return "POST", "/api/v1/gateway/admit", json.dumps(body).encode()

        def settle_body(i: int) -> tuple[str, str, bytes]:
            tenant, message = admitted[i % len(admitted)]
            body = {
                "tenant_id": tenant,
                "message_id": message,
                "model": MODEL,
                "input_tokens": 300,
                "output_tokens": 200,
                "credential": "platform",
            }
            return "POST", "/api/v1/gateway/settle", json.dumps(body).encode()

        def update_body(i: int) -> tuple[str, str, bytes]:
            body = {"tenant_id": tenants[i % len(tenants)], "message_id": f"u-{i}"}
            return "POST", "/update", json.dumps(body).encode()

        def bare_post(i: int) -> tuple[str, str, bytes]:
            return "POST", "/bare", json.dumps({"tenant_id": "t", "message_id": str(i)}).encode()

        async with Driver(create_baseline()) as baseline:
            for name, make in (
                ("baseline: bare GET", lambda _: ("GET", "/bare", b"")),
                ("baseline: bare POST", bare_post),
                ("baseline: one-UPDATE POST", update_body),
            ):
                results.append(await cost(baseline, name, make, token, count, repeat, 0))
        async with Driver(create_app()) as app:
            for name, make, top in (
                ("GET /api/v1/tiers", lambda _: ("GET", "/api/v1/tiers", b""), 0),
                ("POST /gateway/admit", admit_body, profile),
                ("POST /gateway/settle", settle_body, 0),
                ("POST /gateway/admit, one hot tenant", hot_admit_body, profile),
            ):
                results.append(await cost(app, name, make, token, count, repeat, top))
            results.append(await burst(app, token, hot_tenant_ids(1 + BURST_ROUNDS)[1:]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="cProfile's top N of the admit runs")
    parser.add_argument(
        "--no-single-flight", action="store_true", help="each admit reads its tenant itself"
    )
    args = parser.parse_args()
    global ROUND_TRIPS
    ROUND_TRIPS = RoundTrips()
    if args.no_single_flight:
        read_alone()
    import uvloop  # the servers' loop (bench_admission runs uvicorn with --loop uvloop)

    results = uvloop.run(run(args.requests, args.repeat, args.profile))
    print(f"{args.requests} requests per run, best of {args.repeat} runs, one at a time\n")
    print("| scenario | app CPU µs/request | wall µs/request | statements/request "
          "| BEGIN/COMMIT/ROLLBACK per request | calls/request | statuses |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        calls = "" if r["calls"] is None else f"{r['calls']:.0f}"
        print(f"| {r['scenario']} | {r['cpu_us']:.0f} | {r['wall_us']:.0f} | "
              f"{r['statements']:.2f} | {r['transactions']:.2f} | {calls} | "
              f"{r['statuses']} |")  # fmt: skip
    for r in results:
        if "pool" in r:
            print(f"\n{r['scenario']}: {r['pool']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
