"""Admission at scale: the gateway's admit and settle, and the public tier catalog, against
the cheapest Litestar endpoints doing the same I/O, on PostgreSQL, all on 127.0.0.1.

    .venv/bin/python bench/bench_admission.py [--tenants 1000] [--connections 64]
        [--duration 10] [--hot-runs 5] [--hot-duration 3] [--profile DIR] [--json OUT]

PostgreSQL is the embedded wheel (a fresh server in a temporary directory) unless
``TIERKEEPER_BENCH_DATABASE_URL`` names one; a fresh database is created on it either way.
The run seeds N active tenants of mixed tiers and time zones through the repositories, one
service token through the accounts use case, and a counters table for the baseline. Each
server (the product app, then the baseline app) runs in its own uvicorn process with the
same flags; the load comes from ``bench/loadgen.py`` in another process. After the load the
database itself is checked: no tenant's day has more admitted messages than its tier's cap,
each hot tenant has exactly its cap, and every admit the clients were told about is a
reservation in the database and vice versa.

The hot-tenant row sends every request to one premium tenant: its first messages find no
kept copy, up to its cap they are admitted under the tenant's row lock, then refused. It runs
``--hot-runs`` times, each on a fresh hot tenant for ``--hot-duration`` seconds (a long tail
of refusals after the cap), and prints the median run's row and the runs' spread, so a
before/after comparison is not one half-second burst.

Every scenario starts after a ``CHECKPOINT``, so none pays for its predecessor's writes.
After the servers, the baseline's ``UPDATE`` also runs with no HTTP at all, one closed-loop
worker per pooled connection, and its latency tail is printed: the floor under the p99 of
every endpoint that commits on this database.

With ``--profile DIR`` one more admit run is recorded by py-spy (not part of the table).
With ``--pgbouncer`` the product app runs once more with its database URL pointing at a
PgBouncer in transaction mode (``?pooler=transaction``, no named prepared statements) in
front of the same server, and admit and settle are measured again; the table gives their
ratio to the direct connection measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's tests/ importable
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.baseline_app import ENV_URL as BASELINE_ENV_URL  # noqa: E402
from bench.baseline_app import POOL_SIZE, UPDATE_SQL, prepare_table  # noqa: E402
from bench.variant_app import ENV_VARIANT as VARIANT_ENV  # noqa: E402

ENV_DATABASE_URL = "TIERKEEPER_BENCH_DATABASE_URL"
LOOPBACK = "127.0.0.1"
TIER_MIX = (("starter", 50), ("premium", 35), ("byok", 15))
TIMEZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney")
HOT_TENANT = "t-hot"
"""The first hot tenant; the hot runs after the first use ``t-hot-2``, ``t-hot-3`` …"""
WARM_TENANTS = 20
WARM_FRACTION = 0.2
ADMIT_MAX_TOKENS = 1000
"""Small reservations, so caps (not the token budget) decide the hot tenant's admissions."""
BASELINE_CAP = 1_000_000_000
READY_TIMEOUT_S = 60.0
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: str) -> tuple[str, int, float] | None:
    """(command, parent pid, user+system CPU seconds) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return command, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(server_pid: int, postmaster_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by the server process (and its workers) and by the benchmark's
    PostgreSQL server (postmaster and backends; 0 when it is not on this machine)."""
    app = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(entry.name)
        if stat is None:
            continue
        _, parent, used = stat
        pid = int(entry.name)
        if server_pid in (pid, parent):
            app += used
        elif postmaster_pid is not None and postmaster_pid in (pid, parent):
            postgres += used
    return {"app": app, "postgres": postgres}


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's process id, when its data directory is readable here."""
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    with contextlib.suppress(OSError, ValueError, TypeError):
        return int((Path(str(row[0])) / "postmaster.pid").read_text().splitlines()[0])
    return None


def checkpoint(url: str) -> None:
    """Write out everything the previous scenario dirtied, so that no scenario pays for its
    predecessor's checkpoint (skipped on a server where the role may not checkpoint)."""
    with (
        psycopg.connect(libpq(url), autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CHECKPOINT")


def sessions(url: str) -> int:
    """Sessions PostgreSQL has opened on this database so far (this one included): the
    difference across a scenario is the connections the server under test opened."""
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database on the configured server or on an embedded one; dropped afterwards."""
    from tests.support import postgres

    configured = os.environ.get(ENV_DATABASE_URL)
    if configured:
        os.environ[postgres.ENV_URL] = configured
    with postgres.fresh_database("bench") as url:
        yield url


def bench_environ(url: str, work: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "TIERKEEPER_DATABASE_URL": url,
        "TIERKEEPER_VAR_DIR": str(work / "var"),
        "TIERKEEPER_CONFIG_ROOT": str(work / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "bench-platform-secret-0123456789abcdef",
        BASELINE_ENV_URL: libpq(url),
    }


def tenant_ids(count: int) -> list[str]:
    return [f"t-{i:05d}" for i in range(count)]


def hot_tenant_ids(count: int) -> list[str]:
    """One fresh hot tenant per hot run: each run starts with no kept copy and an empty day."""
    return [HOT_TENANT, *(f"{HOT_TENANT}-{n}" for n in range(2, count + 1))]


async def seed(env: Mapping[str, str], count: int, hot: int = 1) -> tuple[str, dict[str, int]]:
    """N active tenants of mixed tiers and time zones plus ``hot`` premium hot ones, through
    the tenant repository; a service token through the accounts use case. Returns the token
    and each tenant's daily message cap (from the catalog)."""
    from domain.ids import TenantId, TierId, UserId
    from domain.tenants import SubscriptionStatus, Tenant, User
    from entrypoints.bootstrap import build_services
    from entrypoints.settings import Settings

    services = await build_services(Settings.from_environ(env))
    try:
        now = datetime.now(UTC)
        tiers = [tier for tier, weight in TIER_MIX for _ in range(weight)]
        caps: dict[str, int] = {}
        plan = [(tid, tiers[i % len(tiers)], TIMEZONES[i % len(TIMEZONES)])
                for i, tid in enumerate(tenant_ids(count))]  # fmt: skip
        plan += [(tid, "premium", "UTC") for tid in hot_tenant_ids(hot)]
        for tid, tier, zone in plan:
            tenant = Tenant(
                id=TenantId(tid),
                tier=TierId(tier),
                status=SubscriptionStatus.ACTIVE,
                timezone=zone,
                billing_anchor_day=1 + len(caps) % 28,
                created_at=now,
            )
            user = User(
                id=UserId(f"u-{tid}"),
                email=f"{tid}@bench.invalid",
                password_hash="bench-no-login",  # noqa: S106
                tenant_id=TenantId(tid),
                created_at=now,
            )
            await services.ports.tenants.add(tenant, user)
            caps[tid] = services.catalog.tier(tier).messages_per_day
        token = await services.accounts.create_service_token("bench-gateway")
        return token.reveal(), caps
    finally:
        await services.close()


def server_command(kind: str, target: str, port: int, app_dir: Path, workers: int) -> list[str]:
    """The command line of one ASGI server process (``uvicorn`` or ``granian``) serving the
    factory ``target`` on loopback, with the same loop, worker count and quiet server logs."""
    if kind == "granian":
        return [
            PYTHON, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", LOOPBACK, "--port", str(port),
            "--working-dir", str(app_dir),
            "--loop", "uvloop", "--no-ws",
            "--no-access-log", "--log-level", "warning",
            "--workers", str(workers), target,
        ]  # fmt: skip
    return [
        PYTHON, "-m", "uvicorn", target, "--factory",
        "--host", LOOPBACK, "--port", str(port),
        "--app-dir", str(app_dir),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip


class Server:
    """One ASGI server process on 127.0.0.1 serving ``target`` (``module:factory``)."""

    kind = "uvicorn"
    """Set once from ``--server`` before any server starts."""

    def __init__(self, target: str, env: Mapping[str, str], work: Path, name: str,
                 app_dir: Path, workers: int) -> None:  # fmt: skip
        self.port = free_port()
        self.log = work / f"{name}.log"
        command = server_command(self.kind, target, self.port, app_dir, workers)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=dict(env), cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            url = f"http://{LOOPBACK}:{self.port}{path}"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
                return
            time.sleep(0.2)
        raise TimeoutError(f"server not ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def load(
    work: Path,
    name: str,
    spec: dict[str, Any],
    server: Server | None = None,
    database_pid: int | None = None,
) -> dict[str, Any]:
    """Run the load generator in its own process; bounded by the spec's durations. With the
    server given, the result also says how much of a core each party used meanwhile."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    path = work / f"{slug}.spec.json"
    path.write_text(json.dumps({"host": LOOPBACK, "seed": zlib.crc32(name.encode()), **spec}))
    budget = float(spec.get("warmup_s", 0)) + float(spec.get("duration_s", 0)) + 60
    before = cpu_seconds(server.process.pid, database_pid) if server else None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "loadgen.py"), str(path)],
        capture_output=True, text=True, timeout=budget, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    result: dict[str, Any] = json.loads(done.stdout)
    result["name"] = name
    if before is not None and server is not None:
        after = cpu_seconds(server.process.pid, database_pid)
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        loadgen = used.ru_utime + used.ru_stime - children.ru_utime - children.ru_stime
        result["cpu_pct"] = {
            "app": round(100 * (after["app"] - before["app"]) / wall),
            "postgres": round(100 * (after["postgres"] - before["postgres"]) / wall),
            "loadgen": round(100 * loadgen / wall),
        }
    return result


def profile(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip


def summarise_profile(raw: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(frame, inclusive %, self %) of the most expensive frames in py-spy's collapsed
    stacks, idle event-loop waits included (they show where the process waits, not works)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    ranked = sorted(inclusive, key=lambda f: -inclusive[f])[:top]
    return [(f, 100 * inclusive[f] / total, 100 * own.get(f, 0) / total) for f in ranked]


def check_database(url: str, caps: Mapping[str, int], admitted: set[tuple[str, str]]
                   ) -> dict[str, Any]:  # fmt: skip
    """Exactness from the database: per tenant and day, admitted messages against the cap,
    and the database's reservations against what clients were told."""
    with psycopg.connect(libpq(url)) as conn:
        days = conn.execute("SELECT tenant_id, day_key, messages FROM usage_days").fetchall()
        rows = conn.execute("SELECT tenant_id, message_id FROM reservations").fetchall()
        per_day = conn.execute(
            "SELECT tenant_id, day_key, count(*) FROM reservations GROUP BY 1, 2"
        ).fetchall()
        settled = conn.execute("SELECT count(*) FROM settlements").fetchone()
    overshoot = sum(max(0, messages - caps[tenant]) for tenant, _, messages in days)
    at_cap = sum(1 for tenant, _, messages in days if messages == caps[tenant])
    hot_tenants = [t for t in caps if t == HOT_TENANT or t.startswith(f"{HOT_TENANT}-")]
    admitted_per_hot = {t: 0 for t in hot_tenants}
    for tenant, _, messages in days:
        if tenant in admitted_per_hot:
            admitted_per_hot[tenant] += messages
    counted = {(t, d): m for t, d, m in days}
    mismatched = sum(1 for t, d, n in per_day if counted.get((t, d)) != n)
    in_db = {(t, m) for t, m in rows}
    return {
        "overshoot": overshoot,
        "tenant_days": len(days),
        "tenant_days_at_cap": at_cap,
        "hot_tenants": len(hot_tenants),
        "hot_admitted": sum(admitted_per_hot.values()),
        "hot_cap": sum(caps[t] for t in hot_tenants),
        "hot_not_at_cap": sum(1 for t in hot_tenants if admitted_per_hot[t] != caps[t]),
        "reservations": len(in_db),
        "client_admitted": len(admitted),
        "acknowledged_not_in_db": len(admitted - in_db),
        "in_db_not_acknowledged": len(in_db - admitted),
        "day_counter_mismatches": mismatched,
        "settlements": int(settled[0]) if settled else 0,
    }


def read_admitted(*paths: Path) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in paths:
        if path.exists():
            found |= {tuple(json.loads(line)) for line in path.read_text().splitlines()}
    return found


async def _database_alone(dsn: str, tenants: list[str], seconds: float) -> dict[str, float]:
    import asyncpg

    from adapters.sql.database import keep_session_state

    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session_state
    )
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        pick = random.Random(seed).choice
        async with pool.acquire() as conn:
            while time.perf_counter() < end:
                started = time.perf_counter()
                await conn.fetchval(UPDATE_SQL, pick(tenants))
                latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker(n) for n in range(POOL_SIZE)))
    finally:
        await pool.close()
    latencies.sort()

    def at(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"statements_s": len(latencies) / seconds, "p50_ms": at(0.5), "p99_ms": at(0.99),
            "p999_ms": at(0.999), "max_ms": 1000 * latencies[-1]}  # fmt: skip


def database_alone(url: str, tenants: list[str], seconds: float) -> dict[str, float]:
    """The one-UPDATE baseline's statement with no HTTP and no Python server in between:
    as many closed-loop workers as the pool has connections, each on its own connection.
    Its tail is the floor under every endpoint that commits (WAL flush stalls included)."""
    return asyncio.run(_database_alone(libpq(url), tenants, seconds))


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


def hot_spread(runs: list[dict[str, Any]], seconds: float) -> str:
    """One line: every hot run's req/s in order, their median and spread around it."""
    rates = [r["rps"] for r in runs]
    middle = median_run(runs)["rps"]
    return (
        f"admit, one hot tenant: {len(runs)} runs of {seconds:g} s, each on a fresh tenant: "
        f"req/s {', '.join(f'{x:.0f}' for x in rates)}; median {middle:.0f}, "
        f"min {min(rates):.0f} ({100 * (min(rates) / middle - 1):+.0f}%), "
        f"max {max(rates):.0f} ({100 * (max(rates) / middle - 1):+.0f}%)"
    )


def machine() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()[0].split()
    return {
        "cpus": str(os.cpu_count()),
        "memory_gib": f"{int(meminfo[1]) / 1024 / 1024:.1f}",
        "python": platform.python_version(),
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }


def row(label: str, result: dict[str, Any], base: dict[str, Any] | None, target: float | None,
        p99_limit: float | None) -> dict[str, Any]:  # fmt: skip
    ratio = result["rps"] / base["rps"] if base else None
    ok = True
    if ratio is not None and target is not None:
        ok = ratio >= target
    if p99_limit is not None:
        ok = ok and result["p99_ms"] < p99_limit
    return {
        "scenario": label,
        "rps": result["rps"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "baseline": base["name"] if base else "",
        "ratio": ratio,
        "target": "" if target is None else f">= {target}x" + (
            f", p99 < {p99_limit:.0f} ms" if p99_limit else ""),
        "meets": ok if (target is not None or p99_limit is not None) else None,
        "statuses": result["measured_statuses"],
        "errors": result["errors"],
        "cpu_pct": result.get("cpu_pct", {}),
        "sessions_opened": result.get("sessions_opened"),
    }  # fmt: skip


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"| {'scenario':<26} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | " \
             f"{'baseline':<12} | {'ratio':>5} | {'target':<24} | {'met':<3} |"  # fmt: skip
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        met = {True: "yes", False: "NO", None: ""}[r["meets"]]
        print(f"| {r['scenario']:<26} | {r['rps']:>7.0f} | {r['p50_ms']:>7.1f} | "
              f"{r['p99_ms']:>7.1f} | {r['baseline']:<12} | {ratio:>5} | {r['target']:<24} | "
              f"{met:<3} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--hot-runs", type=int, default=5, help="hot-tenant runs, each on a fresh hot tenant"
    )
    parser.add_argument(
        "--hot-duration",
        type=float,
        default=3.0,
        help="seconds per hot-tenant run (its cap is reached in the first fraction of it)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers per server")
    parser.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="the ASGI server for the product app and the baselines alike (granian: "
        "pip install granian first; it is not a dependency)",
    )
    parser.add_argument("--profile", type=Path, help="also record the admit run with py-spy")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="also measure admit and settle through PgBouncer in transaction mode",
    )
    parser.add_argument("--json", type=Path, help="write every result as JSON here")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="also measure admit/settle with a proposal applied (bench/variant_app.py), e.g. "
        "token-cache, quiet-access-log, or both comma-separated; repeatable",
    )
    args = parser.parse_args(argv)
    Server.kind = args.server

    work = Path(tempfile.mkdtemp(prefix="tierkeeper-bench-"))
    conns, warm, dur = args.connections, args.warmup, args.duration
    results: dict[str, dict[str, Any]] = {}
    info = machine()
    print(f"machine: {info}", flush=True)
    with bench_database() as url:
        from adapters.sql.database import upgrade

        upgrade(url)
        env = bench_environ(url, work)
        token, caps = asyncio.run(seed(env, args.tenants, args.hot_runs))
        tenants = tenant_ids(args.tenants)
        prepare_table(libpq(url), tenants, BASELINE_CAP)
        print(f"seeded {len(caps)} tenants on {sa.make_url(url).render_as_string()}", flush=True)
        database_pid = postmaster_pid(url)
        common = {"connections": conns, "warmup_s": warm, "duration_s": dur}
        admit_body = {"tenants": tenants, "token": token, "max_tokens": ADMIT_MAX_TOKENS,
                      "hot": tenants[:WARM_TENANTS], "hot_fraction": WARM_FRACTION}  # fmt: skip

        def run(name: str, spec: dict[str, Any]) -> None:
            checkpoint(url)
            opened = sessions(url)
            results[name] = load(work, name, {"port": server.port, **spec}, server, database_pid)
            results[name]["sessions_opened"] = sessions(url) - opened - 1

        def admit_spec(run_id: str, out: Path) -> dict[str, Any]:
            return {"kind": "post_admit", "path": "/api/v1/gateway/admit", "run_id": run_id,
                    "admitted_out": str(out), **admit_body, **common}  # fmt: skip

        def settle_spec(run_id: str, admitted_from: Path) -> dict[str, Any]:
            return {"kind": "post_settle", "path": "/api/v1/gateway/settle", "run_id": run_id,
                    "settle_from": str(admitted_from), "tenants": tenants, "token": token,
                    **common}  # fmt: skip

        server = Server("baseline_app:create_app", env, work, "baseline", ROOT / "bench",
                        args.workers)  # fmt: skip
        try:
            server.wait_ready("/bare")
            run("bare GET", {"kind": "get", "path": "/bare", **common})
            run("bare POST", {"kind": "post_admit", "path": "/bare", **admit_body, **common})
            run("one-UPDATE POST", {"kind": "post_admit", "path": "/update", **admit_body,
                                    **common})  # fmt: skip
        finally:
            server.stop()

        server = Server("entrypoints.http.app:create_app", env, work, "tierkeeper", ROOT,
                        args.workers)  # fmt: skip
        admitted_files = [work / "admitted-spread.jsonl"]
        try:
            server.wait_ready("/healthz")
            run("GET /api/v1/tiers", {"kind": "get", "path": "/api/v1/tiers", **common})
            run("admit", admit_spec("spread", admitted_files[0]))
            run("settle", settle_spec("settle", admitted_files[0]))
            hot_runs = []
            for n, hot_tenant in enumerate(hot_tenant_ids(args.hot_runs)):
                admitted_files.append(work / f"admitted-hot-{n}.jsonl")
                run("admit, one hot tenant", {
                    "kind": "post_admit", "path": "/api/v1/gateway/admit", "run_id": f"hot{n}",
                    "tenants": [hot_tenant], "token": token, "max_tokens": ADMIT_MAX_TOKENS,
                    "admitted_out": str(admitted_files[-1]), "connections": conns,
                    "warmup_s": 0, "duration_s": args.hot_duration,
                })  # fmt: skip
                hot_runs.append(results.pop("admit, one hot tenant"))
            results["admit, one hot tenant"] = median_run(hot_runs)
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                spy = profile(server.process.pid, args.profile / "admit.pyspy.txt", int(dur))
                time.sleep(1)
                admitted_files.append(work / "admitted-prof.jsonl")
                run("admit (profiled)", {**admit_spec("profiled", admitted_files[-1]),
                                         "warmup_s": 0, "duration_s": dur - 1})  # fmt: skip
                spy.wait(timeout=dur + 60)
        finally:
            server.stop()

        if args.pgbouncer:
            from tests.support import pgbouncer, postgres

            with pgbouncer.running_pgbouncer(postgres.admin_url(), pool_size=20) as port:
                pooled_env = {**env, "TIERKEEPER_DATABASE_URL": pgbouncer.pooled_url(url, port)}
                server = Server("entrypoints.http.app:create_app", pooled_env, work,
                                "tierkeeper-pgbouncer", ROOT, args.workers)  # fmt: skip
                try:
                    server.wait_ready("/healthz")
                    admitted_files.append(work / "admitted-pgbouncer.jsonl")
                    run("admit [pgbouncer]", admit_spec("pgbouncer", admitted_files[-1]))
                    run("settle [pgbouncer]", settle_spec("pgb-settle", admitted_files[-1]))
                finally:
                    server.stop()

        for variant in args.variant:
            variant_env = {**env, VARIANT_ENV: variant}
            server = Server("variant_app:create_app", variant_env, work, f"variant-{variant}",
                            ROOT / "bench", args.workers)  # fmt: skip
            try:
                server.wait_ready("/healthz")
                admitted_files.append(work / f"admitted-{variant}.jsonl")
                run(f"admit [{variant}]", admit_spec(f"v-{variant}", admitted_files[-1]))
                run(f"settle [{variant}]", settle_spec(f"vs-{variant}", admitted_files[-1]))
            finally:
                server.stop()

        exact = check_database(url, caps, read_admitted(*admitted_files))
        checkpoint(url)
        alone = database_alone(url, tenants, dur)

    rows = [
        row("POST /gateway/admit", results["admit"], results["one-UPDATE POST"], 0.7, 50),
        row("POST /gateway/settle", results["settle"], results["one-UPDATE POST"], 0.7, 50),
        row("GET /api/v1/tiers", results["GET /api/v1/tiers"], results["bare GET"], 0.8, None),
        row("admit, one hot tenant", results["admit, one hot tenant"], None, None, None),
        row("baseline: one-UPDATE POST", results["one-UPDATE POST"], None, None, None),
        row("baseline: bare POST", results["bare POST"], None, None, None),
        row("baseline: bare GET", results["bare GET"], None, None, None),
    ]
    update = results["one-UPDATE POST"]
    if args.pgbouncer:
        rows.insert(2, row("admit [pgbouncer]", results["admit [pgbouncer]"], results["admit"],
                           None, None))  # fmt: skip
        rows.insert(3, row("settle [pgbouncer]", results["settle [pgbouncer]"],
                           results["settle"], None, None))  # fmt: skip
    for variant in args.variant:
        rows.insert(-3, row(f"admit [{variant}]", results[f"admit [{variant}]"], update, 0.7, 50))
        rows.insert(-3, row(f"settle [{variant}]", results[f"settle [{variant}]"], update, 0.7, 50))
    print()
    print(
        f"{len(caps)} tenants, {conns} connections, {dur:.0f} s measured after {warm:.0f} s "
        f"warm-up, {args.workers} {args.server} worker(s); load average at start "
        f"{info['load_avg']}"
    )
    print()
    print_table(rows)
    print()
    for r in rows:
        print(f"{r['scenario']}: statuses {r['statuses']} errors {r['errors']} "
              f"CPU % of one core {r['cpu_pct']}; database sessions opened "
              f"{r['sessions_opened']}")  # fmt: skip
    print()
    print(
        f"database alone, the one-UPDATE statement on {POOL_SIZE} connections without HTTP: "
        f"{alone['statements_s']:.0f} statements/s, p50 {alone['p50_ms']:.2f} ms, "
        f"p99 {alone['p99_ms']:.2f} ms, p99.9 {alone['p999_ms']:.2f} ms, "
        f"max {alone['max_ms']:.1f} ms"
    )
    print()
    print(hot_spread(hot_runs, args.hot_duration))
    print()
    print(f"overshoot: {exact['overshoot']}")
    print(
        f"hot tenants ({exact['hot_tenants']}) admitted {exact['hot_admitted']} of caps "
        f"{exact['hot_cap']}, {exact['hot_not_at_cap']} not at their cap; "
        f"{exact['tenant_days_at_cap']} of {exact['tenant_days']} tenant-days at their cap"
    )
    print(
        f"admits acknowledged to clients {exact['client_admitted']}, reservations in the "
        f"database {exact['reservations']}; acknowledged but missing "
        f"{exact['acknowledged_not_in_db']}, in the database but never acknowledged "
        f"{exact['in_db_not_acknowledged']}; day counters disagreeing with reservations "
        f"{exact['day_counter_mismatches']}; settlements {exact['settlements']}"
    )
    if args.profile:
        print()
        print("py-spy, admit run (inclusive %, self %):")
        for frame, inc, own in summarise_profile(args.profile / "admit.pyspy.txt"):
            print(f"  {inc:5.1f} {own:5.1f}  {frame}")
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": info, "results": results, "rows": rows, "exactness": exact,
             "database_alone": alone, "hot_runs": hot_runs}, indent=2,
            default=str))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    exact_ok = (
        exact["overshoot"] == 0
        and exact["hot_not_at_cap"] == 0
        and exact["acknowledged_not_in_db"] == 0
        and exact["in_db_not_acknowledged"] == 0
    )
    return 0 if exact_ok else 1


if __name__ == "__main__":
    sys.exit(main())
