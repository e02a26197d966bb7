"""Rotation and moves between key stores over a thousand stored keys, on the real Fernet and
a real OpenBao transit engine, including a run stopped halfway and resumed.

Each test runs with 1,000 keys twice: on the in-memory repository, and on the SQL repository
(SQLite), where it also proves the compare-and-swap and the batched reads under the jobs'
concurrency."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from adapters.keystores.fernet import FernetKeyStore
from adapters.keystores.vault import VaultTransitKeyStore
from adapters.sql.database import open_database
from domain.ports import CredentialRepository, KeyStore
from domain.secrets import Secret
from domain.use_cases.key_maintenance import KeyMaintenance, Progress, Summary
from domain.use_cases.key_store_set import KeyStoreSet
from tests.fakes import InMemoryCredentialRepository
from tests.support.credentials import add_tenants, api_key_for, store_credentials
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("keys_never_logged")]

KEYS = {"memory": 1_000, "sqlite": 1_000}
CONCURRENCY = 8
"""As ``tierkeeper keys`` runs by default."""


@attrs.frozen
class Storage:
    """A credential repository and how many keys the tests put in it."""

    repository: CredentialRepository
    keys: int

    @property
    def stop_after(self) -> int:
        """Where the interrupted runs stop: 40 %, a multiple of ``CONCURRENCY``."""
        return self.keys * 2 // 5 // CONCURRENCY * CONCURRENCY


class Interrupted(Exception):
    """Stands for Ctrl-C, a deploy or a crash in the middle of a job."""


def stop_after(count: int):
    def on_progress(progress: Progress) -> None:
        if progress.done >= count:
            raise Interrupted

    return on_progress


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file holding the tenants the credentials belong to, built once."""
    path = tmp_path_factory.mktemp("key-rotation") / "template.sqlite3"

    async def populate() -> None:
        database = await open_database(f"sqlite:///{path}", migrate=True)
        try:
            await add_tenants(database.tenants, range(KEYS["sqlite"]))
        finally:
            await database.close()

    with ThreadPoolExecutor(1) as thread:  # requested from inside a running event loop
        thread.submit(asyncio.run, populate()).result()
    return path


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Where the keys are stored; the jobs see only the ``CredentialRepository`` port. More
    storages (PostgreSQL) join by adding a parameter here."""
    keys = KEYS[request.param]
    if request.param == "memory":
        yield Storage(InMemoryCredentialRepository(), keys)
        return
    path = tmp_path / "tierkeeper.sqlite3"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    database = await open_database(f"sqlite:///{path}")
    try:
        yield Storage(database.credentials, keys)
    finally:
        await database.close()


def vault_store(server: OpenBaoServer, transit_key: str | None = None) -> VaultTransitKeyStore:
    return VaultTransitKeyStore(
        server.addr,
        token=Secret(server.root_token),
        transit_key=transit_key or f"rotation-{secrets.token_hex(6)}",
    )


async def all_keys_read_back(repository: CredentialRepository, stores: KeyStore) -> bool:
    async for row in repository.iter_all():
        n = int(row.tenant_id.removeprefix("t-"))
        if (await stores.decrypt(row.ciphertext)).reveal() != api_key_for(n).reveal():
            return False
    return True


async def stores_and_versions(repository: CredentialRepository) -> set[tuple[str, int]]:
    return {
        (row.ciphertext.store, row.ciphertext.key_version) async for row in repository.iter_all()
    }


def counts(summary: Summary) -> tuple[int, int, int, int]:
    return summary.processed, summary.changed, summary.skipped, summary.failed


async def test_fernet_rotation_of_every_key_survives_an_interruption(
    storage: Storage,
):
    old_secret, new_secret = Secret(secrets.token_urlsafe(32)), Secret(secrets.token_urlsafe(32))
    await store_credentials(storage.repository, FernetKeyStore([old_secret]), range(storage.keys))
    rotated = KeyStoreSet(FernetKeyStore([new_secret, old_secret]))
    jobs = KeyMaintenance(storage.repository, rotated, concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.rotate(stop_after(storage.stop_after))
    assert await all_keys_read_back(storage.repository, rotated)

    started = time.perf_counter()
    resumed = await jobs.rotate()
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (
        storage.keys,
        storage.keys - storage.stop_after,
        storage.stop_after,
        0,
    )
    verified = await jobs.verify()
    assert (verified.verified, verified.stale, verified.failed) == (storage.keys, 0, 0)
    only_new = FernetKeyStore([new_secret])
    assert await stores_and_versions(storage.repository) == {("fernet", only_new.current_version)}
    assert await all_keys_read_back(storage.repository, only_new)
    print(f"fernet: rotated {storage.keys - storage.stop_after} keys in {elapsed:.2f} s")


async def test_vault_rotation_of_every_key_survives_an_interruption(
    storage: Storage, openbao: OpenBaoServer
):
    store = vault_store(openbao)
    await store_credentials(storage.repository, store, range(storage.keys))
    new_version = await store.rotate_key()
    jobs = KeyMaintenance(storage.repository, KeyStoreSet(store), concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.rotate(stop_after(storage.stop_after))
    assert await all_keys_read_back(storage.repository, store)

    started = time.perf_counter()
    resumed = await jobs.rotate()
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (
        storage.keys,
        storage.keys - storage.stop_after,
        storage.stop_after,
        0,
    )
    assert await stores_and_versions(storage.repository) == {("vault", new_version)}
    openbao.client().secrets.transit.update_key_configuration(
        store.transit_key, min_decryption_version=new_version
    )
    verified = await jobs.verify()
    assert (verified.verified, verified.stale, verified.failed) == (storage.keys, 0, 0)
    print(f"vault: rewrapped {storage.keys - storage.stop_after} keys in {elapsed:.2f} s")


async def test_moving_every_key_from_fernet_to_vault_survives_an_interruption(
    storage: Storage, openbao: OpenBaoServer
):
    fernet = FernetKeyStore([Secret(secrets.token_urlsafe(32))])
    vault = vault_store(openbao)
    await store_credentials(storage.repository, fernet, range(storage.keys))
    during = KeyStoreSet(fernet, (vault,))
    jobs = KeyMaintenance(storage.repository, during, concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.migrate("vault", stop_after(storage.stop_after))
    assert await all_keys_read_back(storage.repository, during)

    started = time.perf_counter()
    resumed = await jobs.migrate("vault")
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (
        storage.keys,
        storage.keys - storage.stop_after,
        storage.stop_after,
        0,
    )
    assert await stores_and_versions(storage.repository) == {("vault", 1)}
    assert await all_keys_read_back(storage.repository, vault)
    print(f"fernet -> vault: moved {storage.keys - storage.stop_after} keys in {elapsed:.2f} s")


async def test_moving_keys_from_vault_back_to_fernet(storage: Storage, openbao: OpenBaoServer):
    keys = min(storage.keys, 250)
    fernet = FernetKeyStore([Secret(secrets.token_urlsafe(32))])
    vault = vault_store(openbao)
    await store_credentials(storage.repository, vault, range(keys))
    jobs = KeyMaintenance(
        storage.repository, KeyStoreSet(vault, (fernet,)), concurrency=CONCURRENCY
    )

    started = time.perf_counter()
    moved = await jobs.migrate("fernet")
    elapsed = time.perf_counter() - started

    assert counts(moved) == (keys, keys, 0, 0)
    assert await stores_and_versions(storage.repository) == {("fernet", fernet.current_version)}
    assert await all_keys_read_back(storage.repository, fernet)
    print(f"vault -> fernet: moved {keys} keys in {elapsed:.2f} s")


async def test_a_mixed_population_is_rotated_in_each_store_and_then_moved(
    storage: Storage, openbao: OpenBaoServer
):
    """Half the keys in each store, both stores rotated: rotate keeps each key in its store
    under its newest key; migrate then gathers them all in one."""
    half = min(storage.keys, 200) // 2
    old_secret, new_secret = Secret(secrets.token_urlsafe(32)), Secret(secrets.token_urlsafe(32))
    vault = vault_store(openbao)
    await store_credentials(storage.repository, FernetKeyStore([old_secret]), range(0, half))
    await store_credentials(storage.repository, vault, range(half, 2 * half))
    latest = await vault.rotate_key()
    fernet = FernetKeyStore([new_secret, old_secret])
    jobs = KeyMaintenance(
        storage.repository, KeyStoreSet(fernet, (vault,)), concurrency=CONCURRENCY
    )

    rotated = await jobs.rotate()

    assert counts(rotated) == (2 * half, 2 * half, 0, 0)
    assert await stores_and_versions(storage.repository) == {
        ("fernet", fernet.current_version),
        ("vault", latest),
    }
    moved = await jobs.migrate("fernet")
    assert counts(moved) == (2 * half, half, half, 0)
    assert await all_keys_read_back(storage.repository, FernetKeyStore([new_secret]))
