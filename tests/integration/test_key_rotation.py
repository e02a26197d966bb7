"""Rotation and moves between key stores over a thousand stored keys, on the real Fernet and
a real OpenBao transit engine, including a run stopped halfway and resumed."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import pytest

from adapters.keystores.fernet import FernetKeyStore
from adapters.keystores.vault import VaultTransitKeyStore
from domain.key_store_set import KeyStoreSet
from domain.ports import CredentialRepository, KeyStore
from domain.secrets import Secret
from domain.use_cases.key_maintenance import KeyMaintenance, Progress, Summary
from tests.fakes import InMemoryCredentialRepository
from tests.support.credentials import api_key_for, store_credentials
from tests.support.openbao import OpenBaoServer

pytestmark = pytest.mark.integration

KEYS = 1_000
STOP_AFTER = 400
BACK_KEYS = 250
CONCURRENCY = 8
"""As ``tierkeeper keys`` runs by default."""


class Interrupted(Exception):
    """Stands for Ctrl-C, a deploy or a crash in the middle of a job."""


def stop_after(count: int):
    def on_progress(progress: Progress) -> None:
        if progress.done >= count:
            raise Interrupted

    return on_progress


@pytest.fixture
async def credential_repository() -> AsyncIterator[CredentialRepository]:
    """Where the keys are stored. In memory for now: the SQL repository joins these tests by
    parametrizing this fixture (the jobs see only the ``CredentialRepository`` port)."""
    yield InMemoryCredentialRepository()


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


async def test_fernet_rotation_of_a_thousand_keys_survives_an_interruption(
    credential_repository: CredentialRepository,
):
    old_secret, new_secret = Secret(secrets.token_urlsafe(32)), Secret(secrets.token_urlsafe(32))
    await store_credentials(credential_repository, FernetKeyStore([old_secret]), range(KEYS))
    rotated = KeyStoreSet(FernetKeyStore([new_secret, old_secret]))
    jobs = KeyMaintenance(credential_repository, rotated, concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.rotate(stop_after(STOP_AFTER))
    assert await all_keys_read_back(credential_repository, rotated)

    started = time.perf_counter()
    resumed = await jobs.rotate()
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (KEYS, KEYS - STOP_AFTER, STOP_AFTER, 0)
    verified = await jobs.verify()
    assert (verified.verified, verified.stale, verified.failed) == (KEYS, 0, 0)
    only_new = FernetKeyStore([new_secret])
    assert await stores_and_versions(credential_repository) == {
        ("fernet", only_new.current_version)
    }
    assert await all_keys_read_back(credential_repository, only_new)
    print(f"fernet: rotated {KEYS - STOP_AFTER} keys in {elapsed:.2f} s")


async def test_vault_rotation_of_a_thousand_keys_survives_an_interruption(
    credential_repository: CredentialRepository, openbao: OpenBaoServer
):
    store = vault_store(openbao)
    await store_credentials(credential_repository, store, range(KEYS))
    new_version = await store.rotate_key()
    jobs = KeyMaintenance(credential_repository, KeyStoreSet(store), concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.rotate(stop_after(STOP_AFTER))
    assert await all_keys_read_back(credential_repository, store)

    started = time.perf_counter()
    resumed = await jobs.rotate()
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (KEYS, KEYS - STOP_AFTER, STOP_AFTER, 0)
    assert await stores_and_versions(credential_repository) == {("vault", new_version)}
    openbao.client().secrets.transit.update_key_configuration(
        store.transit_key, min_decryption_version=new_version
    )
    verified = await jobs.verify()
    assert (verified.verified, verified.stale, verified.failed) == (KEYS, 0, 0)
    print(f"vault: rewrapped {KEYS - STOP_AFTER} keys in {elapsed:.2f} s")


async def test_moving_a_thousand_keys_from_fernet_to_vault_survives_an_interruption(
    credential_repository: CredentialRepository, openbao: OpenBaoServer
):
    fernet = FernetKeyStore([Secret(secrets.token_urlsafe(32))])
    vault = vault_store(openbao)
    await store_credentials(credential_repository, fernet, range(KEYS))
    during = KeyStoreSet(fernet, (vault,))
    jobs = KeyMaintenance(credential_repository, during, concurrency=CONCURRENCY)

    with pytest.raises(Interrupted):
        await jobs.migrate("vault", stop_after(STOP_AFTER))
    assert await all_keys_read_back(credential_repository, during)

    started = time.perf_counter()
    resumed = await jobs.migrate("vault")
    elapsed = time.perf_counter() - started

    assert counts(resumed) == (KEYS, KEYS - STOP_AFTER, STOP_AFTER, 0)
    assert await stores_and_versions(credential_repository) == {("vault", 1)}
    assert await all_keys_read_back(credential_repository, vault)
    print(f"fernet -> vault: moved {KEYS - STOP_AFTER} keys in {elapsed:.2f} s")


async def test_moving_keys_from_vault_back_to_fernet(
    credential_repository: CredentialRepository, openbao: OpenBaoServer
):
    fernet = FernetKeyStore([Secret(secrets.token_urlsafe(32))])
    vault = vault_store(openbao)
    await store_credentials(credential_repository, vault, range(BACK_KEYS))
    jobs = KeyMaintenance(
        credential_repository, KeyStoreSet(vault, (fernet,)), concurrency=CONCURRENCY
    )

    started = time.perf_counter()
    moved = await jobs.migrate("fernet")
    elapsed = time.perf_counter() - started

    assert counts(moved) == (BACK_KEYS, BACK_KEYS, 0, 0)
    assert await stores_and_versions(credential_repository) == {("fernet", fernet.current_version)}
    assert await all_keys_read_back(credential_repository, fernet)
    print(f"vault -> fernet: moved {BACK_KEYS} keys in {elapsed:.2f} s")


async def test_a_mixed_population_is_rotated_in_each_store_and_then_moved(
    credential_repository: CredentialRepository, openbao: OpenBaoServer
):
    """Half the keys in each store, both stores rotated: rotate keeps each key in its store
    under its newest key; migrate then gathers them all in one."""
    old_secret, new_secret = Secret(secrets.token_urlsafe(32)), Secret(secrets.token_urlsafe(32))
    vault = vault_store(openbao)
    await store_credentials(credential_repository, FernetKeyStore([old_secret]), range(0, 100))
    await store_credentials(credential_repository, vault, range(100, 200))
    latest = await vault.rotate_key()
    fernet = FernetKeyStore([new_secret, old_secret])
    jobs = KeyMaintenance(
        credential_repository, KeyStoreSet(fernet, (vault,)), concurrency=CONCURRENCY
    )

    rotated = await jobs.rotate()

    assert counts(rotated) == (200, 200, 0, 0)
    assert await stores_and_versions(credential_repository) == {
        ("fernet", fernet.current_version),
        ("vault", latest),
    }
    moved = await jobs.migrate("fernet")
    assert counts(moved) == (200, 100, 100, 0)
    assert await all_keys_read_back(credential_repository, FernetKeyStore([new_secret]))
