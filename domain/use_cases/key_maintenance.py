"""Batch jobs over every stored BYOK key: rotate, move between stores, verify.

The rules that make them safe to run on a live service and to interrupt at any point:

- The job first takes a snapshot of each tenant's ciphertext, then handles the tenants one
  by one. Nothing is written for a tenant until its new ciphertext exists; the swap is
  ``replace_ciphertext(expected, new)``, so a customer's concurrent PUT wins and the job
  counts that tenant as skipped.
- Each tenant is swapped on its own: a job stopped halfway leaves every key readable, some
  under the old key and some under the new. A rerun skips the ones already current (rotate)
  or already moved (migrate), so rerunning until ``failed == 0`` is the whole procedure.
- A key that cannot be read is counted as failed, with the store's reason, and the job goes
  on with the next tenant; the store itself being down stops the job before it starts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable
from domain.ids import TenantId
from domain.key_store_set import KeyStoreSet
from domain.ports import CredentialRepository, KeyStore


class Action(enum.Enum):
    ROTATE = "rotate"
    MIGRATE = "migrate"
    VERIFY = "verify"


class Outcome(enum.Enum):
    CHANGED = "changed"
    SKIPPED = "skipped"
    VERIFIED = "verified"
    FAILED = "failed"


@attrs.frozen
class Failure:
    """A tenant whose key could not be handled, and the store's reason (never the key)."""

    tenant_id: TenantId
    detail: str


@attrs.frozen
class Progress:
    """Reported after each tenant: how many are done out of how many, and what happened."""

    done: int
    total: int
    tenant_id: TenantId
    outcome: Outcome


ProgressCallback = Callable[[Progress], None]


def _ignore(progress: Progress) -> None:
    return None


@attrs.frozen
class Summary:
    """What a run did. Verify reports ``verified`` (read fine) and ``stale`` (read fine but
    not under the active store's newest key); rotate and migrate report ``changed`` and
    ``skipped`` (already current, already moved, or changed concurrently)."""

    action: Action
    processed: int
    changed: int
    skipped: int
    failed: int
    verified: int = 0
    stale: int = 0
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failed == 0


@attrs.define
class _Tally:
    action: Action
    total: int
    on_progress: ProgressCallback
    counts: dict[Outcome, int] = attrs.Factory(lambda: dict.fromkeys(Outcome, 0))
    failures: list[Failure] = attrs.Factory(list)
    stale: int = 0

    def record(self, tenant_id: TenantId, outcome: Outcome) -> None:
        self.counts[outcome] += 1
        done = sum(self.counts.values())
        self.on_progress(Progress(done, self.total, tenant_id, outcome))

    def fail(self, tenant_id: TenantId, error: KeyStoreUnavailable) -> None:
        self.failures.append(Failure(tenant_id, error.detail))
        self.record(tenant_id, Outcome.FAILED)

    def summary(self) -> Summary:
        return Summary(
            action=self.action,
            processed=sum(self.counts.values()),
            changed=self.counts[Outcome.CHANGED],
            skipped=self.counts[Outcome.SKIPPED],
            failed=self.counts[Outcome.FAILED],
            verified=self.counts[Outcome.VERIFIED],
            stale=self.stale,
            failures=tuple(self.failures),
        )


@attrs.frozen
class KeyMaintenance:
    """The three jobs over the credential repository and the configured key stores."""

    credentials: CredentialRepository
    stores: KeyStoreSet
    batch_size: int = 500

    async def snapshot(self) -> list[tuple[TenantId, Ciphertext]]:
        """Every tenant's ciphertext as it is now; the jobs then work from this list, so no
        read cursor stays open while they write."""
        return [
            (credential.tenant_id, credential.ciphertext)
            async for credential in self.credentials.iter_all(self.batch_size)
        ]

    async def rotate(self, on_progress: ProgressCallback = _ignore) -> Summary:
        """Re-encrypt every key that is not under its own store's newest key (Fernet: the
        newest platform secret; Vault: the transit key's latest version). Keys stay in the
        store that holds them; moving them is ``migrate``."""
        rows = await self.snapshot()
        await self._check_stores_of(rows)
        tally = _Tally(Action.ROTATE, len(rows), on_progress)
        for tenant_id, ciphertext in rows:
            try:
                store = self.stores.store_named(ciphertext.store)
                if await store.is_current(ciphertext):
                    tally.record(tenant_id, Outcome.SKIPPED)
                    continue
                new = await store.rewrap(ciphertext)
            except KeyStoreUnavailable as error:
                tally.fail(tenant_id, error)
                continue
            tally.record(tenant_id, await self._swap(tenant_id, ciphertext, new))
        return tally.summary()

    async def migrate(self, target: str, on_progress: ProgressCallback = _ignore) -> Summary:
        """Move every key into the store named ``target``: decrypted by the store that made
        it, encrypted by the target, read back, then swapped. Keys already in the target are
        skipped."""
        target_store = self.stores.store_named(target)
        rows = await self.snapshot()
        await self._check_stores_of(rows, target)
        tally = _Tally(Action.MIGRATE, len(rows), on_progress)
        for tenant_id, ciphertext in rows:
            if ciphertext.store == target:
                tally.record(tenant_id, Outcome.SKIPPED)
                continue
            try:
                new = await self._move(ciphertext, target_store)
            except KeyStoreUnavailable as error:
                tally.fail(tenant_id, error)
                continue
            tally.record(tenant_id, await self._swap(tenant_id, ciphertext, new))
        return tally.summary()

    async def verify(self, on_progress: ProgressCallback = _ignore) -> Summary:
        """Decrypt every key and report the unreadable ones; writes nothing. Readable keys
        not under the active store's newest key are counted as stale."""
        rows = await self.snapshot()
        tally = _Tally(Action.VERIFY, len(rows), on_progress)
        for tenant_id, ciphertext in rows:
            try:
                await self.stores.decrypt(ciphertext)
                current = await self.stores.is_current(ciphertext)
            except KeyStoreUnavailable as error:
                tally.fail(tenant_id, error)
                continue
            tally.stale += 0 if current else 1
            tally.record(tenant_id, Outcome.VERIFIED)
        return tally.summary()

    async def _check_stores_of(self, rows: list[tuple[TenantId, Ciphertext]], *extra: str) -> None:
        """A store that is down stops the job before it writes anything; a store no row
        names is not asked, and a name no store has fails only its own rows."""
        names = {ciphertext.store for _, ciphertext in rows} | set(extra)
        for store in self.stores.stores:
            if store.name in names:
                await store.check()

    async def _move(self, ciphertext: Ciphertext, target: KeyStore) -> Ciphertext:
        plaintext = await self.stores.decrypt(ciphertext)
        new = await target.encrypt(plaintext)
        if (await target.decrypt(new)).reveal() != plaintext.reveal():
            raise KeyStoreUnavailable(f"the {target.name} key store did not read back its own key")
        return new

    async def _swap(self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext) -> Outcome:
        """A tenant whose row changed since the snapshot (a PUT, a delete) is left alone."""
        swapped = await self.credentials.replace_ciphertext(tenant_id, expected, new)
        return Outcome.CHANGED if swapped else Outcome.SKIPPED
