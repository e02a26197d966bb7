"""Benchmark: regenerate N tenants' OpenClaw configs with the real ``FileConfigWriter``.

Tenants are spread over every config variant (starter, premium, BYOK per provider, key
state and fallback choice) and held in the in-memory repositories of ``tests/fakes.py``, so
the numbers measure the use case, the renderer and the file writer (fsyncs included), not a
database. Two passes: the first writes every tenant, the second finds every one unchanged.

    .venv/bin/python bench/bench_regenerate.py [--tenants 10000] [--root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import FileConfigWriter
from domain.ids import TenantId, UserId
from domain.use_cases.configs import Configs
from tests.fakes import (
    FakeKeyStore,
    InMemoryCredentialRepository,
    InMemoryTenantRepository,
)
from tests.support.openclaw_variants import all_variants, fake_key


async def populate(n: int) -> tuple[InMemoryTenantRepository, InMemoryCredentialRepository]:
    catalog = load_catalog()
    variants = all_variants(catalog)
    tenants, credentials, key_store = (
        InMemoryTenantRepository(),
        InMemoryCredentialRepository(),
        FakeKeyStore(),
    )
    for i in range(n):
        variant = variants[i % len(variants)]
        tenant_id = TenantId(f"t{i:06d}-{variant.name}")
        tenants.tenants[tenant_id] = attrs.evolve(variant.tenant, id=tenant_id)
        if variant.credential is not None:
            provider = catalog.byok_provider(variant.credential.provider)
            ciphertext = await key_store.encrypt(fake_key(provider, tenant_id))
            await credentials.put(
                attrs.evolve(
                    variant.credential,
                    tenant_id=tenant_id,
                    user_id=UserId(f"user-{tenant_id}"),
                    ciphertext=ciphertext,
                )
            )
    return tenants, credentials


Row = tuple[str, int, int, int, float]


async def run(n: int, root: Path, concurrency: int) -> list[Row]:
    catalog = load_catalog()
    tenants, credentials = await populate(n)
    configs = Configs(catalog, tenants, credentials, FakeKeyStore(), FileConfigWriter(root))
    rows = []
    for label in ("regenerate, first write", "regenerate, unchanged"):
        started = time.perf_counter()
        summary = await configs.regenerate()
        elapsed = time.perf_counter() - started
        rows.append((label, summary.written, summary.unchanged, len(summary.failed), elapsed))
    if concurrency > 1:
        fresh = Configs(
            catalog, tenants, credentials, FakeKeyStore(), FileConfigWriter(root.with_name("c2"))
        )
        rows.append(await concurrent_pass(fresh, sorted(tenants.tenants), concurrency))
    return rows


async def concurrent_pass(configs: Configs, ids: list[TenantId], concurrency: int) -> Row:
    """For comparison: ``Configs.write`` for every tenant, ``concurrency`` at a time, so
    the fsyncs of different tenants overlap (regenerate itself goes one by one)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(tenant_id: TenantId) -> bool:
        async with gate:
            return await configs.write(tenant_id)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(t) for t in ids), return_exceptions=True)
    elapsed = time.perf_counter() - started
    written = sum(r is True for r in results)
    unchanged = sum(r is False for r in results)
    failed = sum(isinstance(r, BaseException) for r in results)
    return (f"{concurrency} concurrent writes, first write", written, unchanged, failed, elapsed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--root", type=Path, default=None, help="config root (default: temp dir)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="also time N concurrent writes (1: skip)"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tierkeeper-bench-"))
    root = args.root or scratch / "configs"
    try:
        rows = asyncio.run(run(args.tenants, root, args.concurrency))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"# {args.tenants} tenants, Python {platform.python_version()}, {platform.machine()}")
    print("| pass | written | unchanged | failed | seconds | configs/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, written, unchanged, failed, elapsed in rows:
        rate = (written + unchanged + failed) / elapsed
        print(f"| {label} | {written} | {unchanged} | {failed} | {elapsed:.2f} | {rate:,.0f} |")
    return 0 if all(row[3] == 0 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
