"""Every configured key store at once: one is active, the others still decrypt.

During a move between stores some ciphertexts were made by the old store and some by the
new one. Each ciphertext names its store, so the set sends every decryption to the store
that made it, while new keys are encrypted by the active store only. The set is itself a
``KeyStore``: the application uses it in place of a single store and needs no downtime
while a batch job moves the keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable, ValidationError
from domain.ports import KeyStore
from domain.secrets import Secret


def _unique_names(stores: Sequence[KeyStore]) -> tuple[KeyStore, ...]:
    names = [store.name for store in stores]
    if len(set(names)) != len(names):
        raise ValidationError(f"key stores must have distinct names, got {names}", field="stores")
    return tuple(stores)


@attrs.frozen
class KeyStoreSet:
    """The active store (it encrypts) and every other configured store (they decrypt their
    own ciphertexts). ``name`` is the active store's name."""

    active: KeyStore
    others: tuple[KeyStore, ...] = attrs.field(default=(), converter=tuple)
    name: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        _unique_names([self.active, *self.others])
        object.__setattr__(self, "name", self.active.name)

    def stores(self) -> tuple[KeyStore, ...]:
        return (self.active, *self.others)

    def store_named(self, name: str) -> KeyStore:
        """The configured store of that name; an unconfigured one is unavailable, and the
        message says which variable configures it."""
        for store in self.stores():
            if store.name == name:
                return store
        configured = ", ".join(store.name for store in self.stores())
        raise KeyStoreUnavailable(
            f"no key store named {name!r} is configured (configured: {configured})"
        )

    async def encrypt(self, plaintext: Secret) -> Ciphertext:
        return await self.active.encrypt(plaintext)

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        """Decrypted by the store that made the ciphertext, whichever is active."""
        return await self.store_named(ciphertext.store).decrypt(ciphertext)

    async def is_current(self, ciphertext: Ciphertext) -> bool:
        """Current means: made by the active store's newest key."""
        return await self.active.is_current(ciphertext)

    async def rewrap(self, ciphertext: Ciphertext) -> Ciphertext:
        """Under the active store's newest key: rewrapped in place when the active store made
        it, else decrypted by its own store and encrypted by the active one."""
        if ciphertext.store == self.active.name:
            return await self.active.rewrap(ciphertext)
        return await self.active.encrypt(await self.decrypt(ciphertext))

    async def check(self) -> None:
        await self.active.check()
