"""Benchmark: ``keys rotate`` (``KeyMaintenance.rotate``) over N stored BYOK keys, Fernet
under a new platform secret, on SQLite and on PostgreSQL, at several concurrencies.

Each row starts from a fresh copy of the same N keys encrypted under the old secret; the
job re-encrypts every one under the new secret and swaps it in with its compare-and-swap.
The row's concurrency is the job's ``--concurrency``. This is what the CLI's default per
database rests on (``entrypoints/cli/keys_commands.py``).

    .venv/bin/python bench/bench_key_rotation.py [--keys 1000] [--concurrency 1 2 8]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.keystores.fernet import FernetKeyStore  # noqa: E402
from adapters.sql.database import open_database  # noqa: E402
from domain.secrets import Secret  # noqa: E402
from domain.use_cases.key_maintenance import KeyMaintenance  # noqa: E402
from domain.use_cases.key_store_set import KeyStoreSet  # noqa: E402
from tests.support import postgres  # noqa: E402
from tests.support.credentials import add_tenants, store_credentials  # noqa: E402

OLD, NEW = Secret(secrets.token_urlsafe(32)), Secret(secrets.token_urlsafe(32))


async def populate(url: str, keys: int) -> None:
    database = await open_database(url, migrate=True)
    try:
        await add_tenants(database.tenants, range(keys))
        await store_credentials(database.credentials, FernetKeyStore([OLD]), range(keys))
    finally:
        await database.close()


async def rotate(url: str, concurrency: int) -> tuple[float, int]:
    database = await open_database(url)
    try:
        jobs = KeyMaintenance(
            database.credentials,
            KeyStoreSet(FernetKeyStore([NEW, OLD])),
            concurrency=concurrency,
        )
        started = time.perf_counter()
        summary = await jobs.rotate()
        return time.perf_counter() - started, summary.changed
    finally:
        await database.close()


def sqlite_rows(keys: int, levels: list[int], work: Path) -> list[tuple[str, int, float, int]]:
    template = work / "template.sqlite3"
    asyncio.run(populate(f"sqlite:///{template}", keys))
    rows = []
    for level in levels:
        copy = work / f"rotate-{level}.sqlite3"
        shutil.copyfile(template, copy)
        seconds, rotated = asyncio.run(rotate(f"sqlite:///{copy}", level))
        rows.append(("SQLite", level, seconds, rotated))
    return rows


def postgres_rows(keys: int, levels: list[int]) -> list[tuple[str, int, float, int]]:
    rows = []
    for level in levels:
        with postgres.fresh_database("rotation") as url:
            asyncio.run(populate(url, keys))
            seconds, rotated = asyncio.run(rotate(url, level))
        rows.append(("PostgreSQL", level, seconds, rotated))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 8])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tierkeeper-rotation-"))
    try:
        rows = sqlite_rows(args.keys, args.concurrency, work)
        rows += postgres_rows(args.keys, args.concurrency)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        postgres.stop_embedded()
    print(f"\n{args.keys} keys, Fernet, rotated to a new platform secret\n")
    print("| database | concurrency | rotated | seconds | keys/s |")
    print("|---|---:|---:|---:|---:|")
    for database, level, seconds, rotated in rows:
        print(f"| {database} | {level} | {rotated} | {seconds:.2f} | {rotated / seconds:,.0f} |")
    return 0 if all(rotated == args.keys for *_, rotated in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
