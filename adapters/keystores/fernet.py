"""``FernetKeyStore``: BYOK keys encrypted with keys derived from the platform secret(s).

Each platform secret (``TIERKEEPER_SECRET_KEY``, comma-separated, newest first) becomes one
Fernet key by HKDF-SHA256 with a fixed salt and info (below; changing them would make every
stored key unreadable). A ``MultiFernet`` over all of them encrypts with the newest and
decrypts with any, so a new secret is rolled out by prepending it, running
``tierkeeper keys rotate``, and only then dropping the old one.

``key_version`` is a fingerprint of the secret, not its position: a 31-bit number taken from
a second HKDF output (different info), so it reveals nothing about the key and stays the same
whatever secrets are added or removed around it. See docs/adr/0002-key-storage.md.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable, ValidationError
from domain.secrets import Secret

HKDF_SALT = b"tierkeeper/byok-key-store/fernet/v1"
HKDF_INFO_KEY = b"tierkeeper fernet encryption key v1"
HKDF_INFO_KEY_ID = b"tierkeeper fernet key id v1"
KEY_ID_MASK = 0x7FFF_FFFF


def _hkdf(secret: Secret, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(
        secret.reveal().encode()
    )


def derive_fernet_key(secret: Secret) -> bytes:
    """The Fernet key (url-safe base64 of 32 bytes) a platform secret stands for."""
    return base64.urlsafe_b64encode(_hkdf(secret, HKDF_INFO_KEY, 32))


def key_version_of(secret: Secret) -> int:
    """The stable, non-secret number that names a platform secret in stored ciphertexts."""
    return int.from_bytes(_hkdf(secret, HKDF_INFO_KEY_ID, 4), "big") & KEY_ID_MASK or 1


class FernetKeyStore:
    """Encrypts with the newest platform secret; decrypts with any configured one."""

    name = "fernet"

    def __init__(self, secrets: Sequence[Secret]) -> None:
        if not secrets:
            raise ValidationError(
                "the Fernet key store needs at least one platform secret",
                field="TIERKEEPER_SECRET_KEY",
            )
        self._fernets = [Fernet(derive_fernet_key(secret)) for secret in secrets]
        self._versions = tuple(key_version_of(secret) for secret in secrets)
        self._multi = MultiFernet(self._fernets)

    @property
    def current_version(self) -> int:
        return self._versions[0]

    def __repr__(self) -> str:
        return f"FernetKeyStore(versions={list(self._versions)})"

    def __getstate__(self) -> None:
        raise TypeError("a key store is never pickled")

    async def encrypt(self, plaintext: Secret) -> Ciphertext:
        token = self._multi.encrypt(plaintext.reveal().encode())
        return Ciphertext(self.name, self.current_version, token.decode("ascii"))

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        self._ensure_ours(ciphertext)
        try:
            plaintext = self._multi.decrypt(ciphertext.token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise KeyStoreUnavailable(self._unreadable(ciphertext)) from None
        return Secret(plaintext.decode())

    async def is_current(self, ciphertext: Ciphertext) -> bool:
        return ciphertext.store == self.name and ciphertext.key_version == self.current_version

    async def rewrap(self, ciphertext: Ciphertext) -> Ciphertext:
        """MultiFernet's rotate: re-encrypted under the newest secret, same timestamp."""
        self._ensure_ours(ciphertext)
        try:
            token = self._multi.rotate(ciphertext.token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise KeyStoreUnavailable(self._unreadable(ciphertext)) from None
        return Ciphertext(self.name, self.current_version, token.decode("ascii"))

    async def check(self) -> None:
        """A local store is always up; this proves the keys still round-trip."""
        probe = Secret("tierkeeper-key-store-check")
        if (await self.decrypt(await self.encrypt(probe))).reveal() != probe.reveal():
            raise KeyStoreUnavailable("the Fernet key store does not read back its own tokens")

    def _ensure_ours(self, ciphertext: Ciphertext) -> None:
        if ciphertext.store != self.name:
            raise KeyStoreUnavailable(
                f"the Fernet key store cannot read a ciphertext of the {ciphertext.store!r} store"
            )

    def _unreadable(self, ciphertext: Ciphertext) -> str:
        if ciphertext.key_version not in self._versions:
            return (
                f"the Fernet key (version {ciphertext.key_version}) was made with a platform "
                "secret that is not configured; add it back to TIERKEEPER_SECRET_KEY"
            )
        return (
            f"the Fernet token (version {ciphertext.key_version}) does not decrypt: "
            "it was altered or truncated"
        )
